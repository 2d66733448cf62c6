"""``infratech e2e STACK --yes``: every phase driven through the command, with the Pulumi Automation
API replaced by its double (automation_double.py) and the Kubernetes API by the kube-apiserver
double (kube_double.py); a failure injected in each phase and the report it leaves."""

from __future__ import annotations

import json

import jsonschema
import pytest
from automation_double import AutomationDouble

from infratech import cli
from infratech.cli import deploy, plan as _plan
from infratech.cli.commands import e2e as e2e_command
from infratech.cli.e2e import phases as e2e_phases
from infratech.cli.e2e.report import SCHEMA
from infratech.cli.stacks import Project


@pytest.fixture
def e2e(kube, project, default_plan, built_images, tmp_path, monkeypatch):
    """Runs ``infratech e2e`` with the doubles; returns (exit status, report JSON, report Markdown, api)."""
    monkeypatch.setattr(deploy.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    monkeypatch.setattr(deploy, "log_file", lambda project, stack, action: tmp_path / f"{stack}-{action}.log")
    monkeypatch.setattr(e2e_command, "REPORTS", tmp_path / "e2e")
    monkeypatch.setattr(e2e_phases, "POLL_S", 0.05)
    # the default stack's offline plan, recorded once per session (the runtime is process-global)
    monkeypatch.setattr(_plan, "record", lambda p, s: default_plan)

    def run(*flags, fail=(), stack_project=None):
        api = AutomationDouble({**default_plan.outputs, "kubeconfig": kube.config_text}, fail=fail)
        monkeypatch.setattr(deploy, "_automation", lambda: api)
        if stack_project is not None:
            monkeypatch.setattr("infratech.cli.app.find_project", lambda start=None: stack_project)
        status = cli.main(["e2e", "ovh-gra11", "--yes", *flags])
        [report] = sorted((tmp_path / "e2e").glob("ovh-gra11-*.json"))
        doc = json.loads(report.read_text())
        jsonschema.validate(doc, SCHEMA)
        return status, doc, report.with_suffix(".md").read_text(), api

    return run


def _phases(doc):
    return {p["name"]: p for p in doc["phases"]}


def test_a_healthy_run_should_pass_every_phase_and_tear_down(e2e, kube):
    status, doc, md, api = e2e()
    assert status == 0, doc
    phases = _phases(doc)
    assert [p["name"] for p in doc["phases"]] == ["plan", "up", "platform", "gpu-health", "work", "teardown"]
    assert {n: p["status"] for n, p in phases.items()} == {
        "plan": "passed", "up": "passed", "platform": "passed", "gpu-health": "not-checked", "work": "passed", "teardown": "passed"}
    assert doc["result"] == "passed" and doc["cleanup"] is None
    assert ("up", "ovh-gra11") in api.calls and api.calls[-1] == ("destroy", "ovh-gra11")
    nodes = phases["up"]["checks"][1]["evidence"]
    assert "pool l40s: 1/1 node(s) Ready with 1 GPU(s) allocatable" in nodes
    assert "kueue in kueue-system: revision 1 deployed" in phases["platform"]["checks"][0]["evidence"]
    assert "ClusterQueue pretraining: Active=True" in phases["platform"]["checks"][2]["evidence"]
    work = {c["name"]: c for c in phases["work"]["checks"]}
    assert "TrainJob/tiny" in work["the TrainJob applied"]["evidence"]
    assert "Succeeded on ClusterQueue pretraining" in work["the job finished successfully"]["evidence"]
    applied = [r for r in kube.requests if r["method"] == "PATCH"]
    assert any(r["path"].endswith("/namespaces/pretraining/trainjobs/tiny") for r in applied)
    assert "not checked by this version: DCGM metrics in Prometheus" in md
    assert all(p["seconds"] is not None for p in doc["phases"])
    # the checks reached the cluster through the stack's kubeconfig output, which no report holds
    assert "t0ken" in kube.config_text and "t0ken" not in json.dumps(doc) + md


def test_keep_should_leave_the_stack_and_say_how_to_remove_it(e2e, capsys):
    status, doc, _, api = e2e("--keep")
    assert status == 0
    assert ("destroy", "ovh-gra11") not in api.calls
    assert _phases(doc)["teardown"] == {**_phases(doc)["teardown"], "status": "skipped", "error": "not run: --keep"}
    assert "infratech destroy ovh-gra11" in doc["cleanup"] and "infratech destroy ovh-gra11" in capsys.readouterr().err


def test_a_mandatory_rule_violated_should_stop_at_plan_with_nothing_created(e2e, project, tmp_path, monkeypatch):
    stack_dir = tmp_path / "stacks"
    stack_dir.mkdir()
    text = project.stack_file("ovh-gra11").read_text(encoding="utf-8")
    text = text.replace("infratech:budget_eur_per_month: 20000", "infratech:budget_eur_per_month: 10000\n  infratech:budget_enforced: true")
    (stack_dir / "Pulumi.ovh-gra11.yaml").write_text(text, encoding="utf-8")
    over_budget = Project(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main)
    monkeypatch.setattr(_plan, "record", _plan.runtime.record)  # this stack's own plan
    status, doc, md, api = e2e(stack_project=over_budget)
    assert status == cli.EXIT_TOOL
    plan = _phases(doc)["plan"]
    assert plan["status"] == "failed" and "budget" in plan["error"]
    assert api.calls == [] and doc["cleanup"] is None
    assert [p["status"] for p in doc["phases"][1:]] == ["skipped"] * 5
    assert "Failed in phase **plan**" in md


def test_a_failed_up_should_keep_what_exists_and_print_how_to_clean_up(e2e, capsys):
    status, doc, md, api = e2e(fail=("up",))
    assert status == cli.EXIT_TOOL
    up = _phases(doc)["up"]
    assert up["status"] == "failed" and "403 quota exceeded" in up["error"]
    assert ("destroy", "ovh-gra11") not in api.calls
    assert "infratech destroy ovh-gra11" in doc["cleanup"]
    err = capsys.readouterr().err
    assert "clean up:" in err and "phase up failed" in err and "Traceback" not in err


def test_teardown_on_failure_should_destroy_after_a_failed_phase(e2e):
    status, doc, _, api = e2e("--teardown-on-failure", fail=("up",))
    assert status == cli.EXIT_TOOL
    assert api.calls[-1] == ("destroy", "ovh-gra11")
    assert _phases(doc)["teardown"]["status"] == "passed" and doc["cleanup"] is None


def test_a_pool_without_its_gpus_should_fail_up_when_its_timeout_passes(e2e, kube):
    kube.reset({**kube.healthy(), ("", "nodes", "l40s-0"): kube.node("l40s", 0, 0)})  # device plugin not up
    status, doc, _, _ = e2e("--timeout", "up=0.005")
    up = _phases(doc)["up"]
    assert status == cli.EXIT_TOOL and up["status"] == "failed" and up["timeout_min"] == 0.005
    assert "pool l40s: 0/1 node(s) Ready with 1 GPU(s) allocatable" in up["error"]


@pytest.mark.parametrize("broken, expected", [
    (lambda k: {("kueue-system", "secrets", "sh.helm.release.v1.kueue.v1"): k.helm_secret("kueue", "kueue-system", 1, "failed")},
     "kueue in kueue-system: revision 1 failed"),
    (lambda k: {("", "customresourcedefinitions", "clusterqueues.kueue.x-k8s.io"): k.crd("clusterqueues.kueue.x-k8s.io", "False")},
     "clusterqueues.kueue.x-k8s.io: Established=False"),
    (lambda k: {("", "clusterqueues", "pretraining"): k.cluster_queue("pretraining", "False")},
     "ClusterQueue pretraining: Active=False (Can't admit new workloads"),
], ids=["release", "crd", "cluster-queue"])
def test_a_broken_platform_should_fail_its_phase_with_the_evidence(e2e, kube, broken, expected):
    kube.reset({**kube.healthy(), **broken(kube)})
    status, doc, md, _ = e2e("--timeout", "platform=0.005")
    platform = _phases(doc)["platform"]
    assert status == cli.EXIT_TOOL and platform["status"] == "failed"
    assert expected in platform["error"] and expected in md
    assert _phases(doc)["work"]["status"] == "skipped"


def test_a_training_that_fails_should_fail_work_naming_its_logs(e2e, kube):
    kube.reset(job_ends="Failed")
    status, doc, _, _ = e2e()
    work = _phases(doc)["work"]
    assert status == cli.EXIT_TOOL and work["status"] == "failed"
    assert "TrainJob failed: node-0 exited 1" in work["error"] and "infratech jobs logs tiny -n pretraining" in work["error"]


def test_a_training_never_admitted_should_fail_work_when_its_timeout_passes(e2e, kube):
    kube.reset(job_ends="Pending")
    status, doc, _, _ = e2e("--timeout", "work=0.005")
    work = _phases(doc)["work"]
    assert status == cli.EXIT_TOOL and work["status"] == "failed"
    assert "admitted by Kueue" in work["error"] and "insufficient quota" in work["error"]


def test_a_failed_destroy_should_say_the_stack_is_left(e2e):
    status, doc, _, api = e2e(fail=("destroy",))
    assert status == cli.EXIT_TOOL
    assert _phases(doc)["teardown"]["status"] == "failed"
    assert "rerun `infratech destroy ovh-gra11`" in doc["cleanup"]


def test_a_self_built_stack_should_be_brought_up_by_the_runner_of_infratech_up(e2e, kube, project, monkeypatch):
    """baremetal-onprem: infrastructure, bootstrap (ansible-playbook replaced by a recorder that
    writes the kubeconfig the fetch playbook fetches), platform; then its own pools are awaited."""
    from infratech.cli import phases as selfbuilt
    from infratech.cli.plan.runtime import record

    playbooks = []

    def ansible(argv, env, cwd):
        playbooks.append((argv[3], env.get("RKE2_TOKEN") is not None))
        dest = next(a.split("=", 1)[1] for a in argv if a.startswith("infratech_kubeconfig_dest="))
        with open(dest, "w", encoding="utf-8") as fh:
            fh.write(kube.config_text)
        return 0

    monkeypatch.setattr(selfbuilt, "logged_ansible", lambda log, note=None: ansible)
    metal = record(project, "baremetal-onprem")
    monkeypatch.setattr(_plan, "record", lambda p, s: metal)
    api = AutomationDouble({**metal.outputs, "kubeconfig": kube.config_text}, secret=("kubeconfig", "join_token"))
    monkeypatch.setattr(deploy, "_automation", lambda: api)
    assert cli.main(["e2e", "baremetal-onprem", "--yes", "--timeout", "up=0.005"]) == cli.EXIT_TOOL
    [report] = sorted((e2e_command.REPORTS).glob("baremetal-onprem-*.json"))
    up = _phases(json.loads(report.read_text()))["up"]
    assert playbooks == [("playbooks/site.yml", True), ("playbooks/fetch_kubeconfig.yml", True)]
    assert [c for c in api.calls if c[0] in ("up", "set_config")] == [
        ("up", "baremetal-onprem"), ("set_config", "infratech:kubeconfig"), ("up", "baremetal-onprem")]
    assert up["checks"][0] == {"name": "the Pulumi up succeeds", "ok": True,
                               "evidence": "self-built phases run: infrastructure, bootstrap, platform"}
    # the recorded cluster has ovh-gra11's nodes, none of this stack's pools: the nodes check fails naming them
    assert up["status"] == "failed" and "pool h100: 0/0 node(s) Ready" in up["error"]
