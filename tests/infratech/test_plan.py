"""The offline plan: runs the real program under Pulumi's mock runtime and reports it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.runtime import mocks

from infratech import cli
from infratech.config import StackConfigError
from infratech.cli.plan import record, report, write
from infratech.cli.plan.runtime import COMPUTED, SECRET
from infratech.cli.stacks import find_project

ROOT = Path(__file__).resolve().parents[2]


def _copy_project(tmp_path: Path) -> Path:
    dst = tmp_path / "proj"
    dst.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "stacks", dst / "stacks")
    return dst


@pytest.mark.parametrize("stack", find_project(ROOT).stacks())
def test_every_shipped_stack_plans(project, stack, tmp_path):
    rec = record(project, stack)
    components = [r for r in rec.resources if r.type.startswith("infratech:providers:")]
    assert len(components) == 1, "every stack gets its cluster from exactly one provider component"
    if rec.outputs["provider"] == "existing":
        # an existing cluster is used as it is: the provider layer creates nothing in any cloud
        assert not [r for r in rec.resources if r.custom and r.parent == components[0].urn]
    else:
        assert any(r.custom for r in rec.resources), "a stack that declares nothing is not a plan"
    files = write(rec, tmp_path)
    data = json.loads(files.json.read_text())
    assert data["stack"] == stack
    assert data["summary"]["resources"] == len(rec.resources)
    assert files.markdown.read_text().startswith(f"# Plan: stack `{stack}`")


def test_plan_json_is_stable(project, default_plan):
    again = record(project, "ovh-gra11")
    assert report.dumps_json(again) == report.dumps_json(default_plan)
    assert report.to_markdown(again) == report.to_markdown(default_plan)


def test_plan_records_parents_dependencies_and_computed_values(default_plan):
    component = default_plan.one("infratech:providers:OvhCluster")
    assert not component.custom
    custom = [r for r in default_plan.resources if r.custom and r.package == "ovh"]
    assert custom and all(r.parent == component.urn for r in custom)
    platform = default_plan.one("infratech:platform:Platform")
    k8s_objects = [r for r in default_plan.resources if r.package == "kubernetes"]
    by_urn = {r.urn: r for r in default_plan.resources}

    def under_platform(res) -> bool:
        while res.parent in by_urn:
            if res.parent == platform.urn:
                return True
            res = by_urn[res.parent]
        return False

    assert k8s_objects and all(under_platform(r) for r in k8s_objects)
    kube = default_plan.one("ovh:CloudProject/kube:Kube")
    gateway = default_plan.one("ovh:CloudProject/gateway:Gateway")
    assert gateway.urn in kube.dependencies
    for pool in default_plan.by_type("ovh:CloudProject/kubeNodePool:KubeNodePool"):
        assert pool.inputs["kubeId"] == COMPUTED, "the cluster id exists only after creation"
        assert kube.urn in pool.dependencies


KEY_MATERIAL = "client-key-data: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tMIIEvQ"
S3_SECRET = "s3-secret-9f8e7d6c5b4a"


class CredentialsStandIn(mocks.Mocks):
    """Test double of the providers' APIs (no cloud here) that answers with real-looking key
    material, as a real `up` would: the kubeconfig of the cluster and the S3 key."""

    def new_resource(self, args: mocks.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "ovh:CloudProject/kube:Kube":
            state["kubeconfig"] = f"apiVersion: v1\nusers:\n- user:\n    {KEY_MATERIAL}\n"
        if args.typ == "ovh:CloudProject/s3Credential:S3Credential":
            state.update(accessKeyId="AKID1234", secretAccessKey=S3_SECRET)
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs):
        return {}, None


def test_secrets_are_masked_everywhere(project):
    rec = record(project, "ovh-gra11", behaviour=CredentialsStandIn())
    outputs = rec.outputs
    assert outputs["kubeconfig"] == SECRET
    assert outputs["object_store"]["access_key_id"] == SECRET
    assert outputs["object_store"]["secret_access_key"] == SECRET
    assert outputs["object_store"]["promoter"] == {"access_key_id": SECRET, "secret_access_key": SECRET}
    assert "kubeconfig" in rec.one("ovh:CloudProject/kube:Kube").secret_outputs
    creds = rec.by_type("ovh:CloudProject/s3Credential:S3Credential")
    assert creds and all("secretAccessKey" in c.secret_outputs for c in creds)
    # the providers returned key material: none of it reaches the plan's text, JSON or Markdown,
    # and the platform's Kubernetes provider gets the kubeconfig as a secret
    for text in (report.dumps_json(rec), report.to_text(rec), report.to_markdown(rec)):
        assert "client-key-data" not in text and "LS0tLS1CRUdJTi" not in text and S3_SECRET not in text
    (cluster,) = rec.by_type("pulumi:providers:kubernetes")
    assert cluster.inputs["kubeconfig"] == SECRET


def test_tree_shows_key_properties(default_plan):
    text = report.to_text(default_plan)
    assert "OvhCluster llm-gra11" in text
    assert "flavorName=h100-380  nodes(min/desired/max)=0/2/4" in text
    assert "taints=[nvidia.com/gpu=present:NoSchedule]" in text
    assert "name=llm-gra11-checkpoints" in text and "versioning.status=ENABLED" in text
    assert "version=1.34" in text


def test_plan_comes_from_running_the_program(tmp_path):
    """Change __main__.py and the plan changes: there is no second description of the stack."""
    proj = _copy_project(tmp_path)
    main = proj / "__main__.py"
    main.write_text(
        main.read_text()
        + "\nimport pulumi_ovh\npulumi_ovh.CloudSSHKey('operator-key', public_key='ssh-ed25519 AAAA test')\n"
    )
    rec = record(find_project(proj), "ovh-gra11")
    keys = rec.by_type("ovh:index/cloudSSHKey:CloudSSHKey")
    assert [k.name for k in keys] == ["operator-key"]


def test_bad_stack_declares_nothing_and_writes_nothing(tmp_path, capsys):
    proj = _copy_project(tmp_path)
    bad = (proj / "stacks" / "Pulumi.ovh-gra11.yaml").read_text().replace("h100-380", "h100-999")
    (proj / "stacks" / "Pulumi.broken.yaml").write_text(bad)
    with pytest.raises(StackConfigError) as err:
        record(find_project(proj), "broken")
    assert [p.path for p in err.value.problems] == ["pools[1].flavor"]
    out = tmp_path / "out"
    rc = cli.main(["--project-dir", str(proj), "plan", "broken", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == cli.EXIT_BAD_INPUT
    assert "pools[1].flavor" in captured.err and "h100-999" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists()


def test_unknown_stack_is_a_clear_error(capsys):
    rc = cli.main(["--project-dir", str(ROOT), "plan", "no-such-stack"])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_BAD_INPUT
    assert "unknown stack 'no-such-stack'" in err and "ovh-gra11" in err


def test_cli_plan_prints_tree_and_writes_both_files(tmp_path, capsys):
    rc = cli.main(["--project-dir", str(ROOT), "plan", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Plan for stack 'ovh-gra11'" in out
    assert (tmp_path / "ovh-gra11.json").is_file() and (tmp_path / "ovh-gra11.md").is_file()


@pytest.mark.parametrize("action", ["preview", "up", "destroy", "outputs"])
def test_deploy_commands_without_pulumi_cli_say_so(action, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    rc = cli.main(["--project-dir", str(ROOT), action, "ovh-gra11"])
    err = capsys.readouterr().err.strip()
    assert rc == cli.EXIT_TOOL
    assert len(err.splitlines()) == 1 and "Pulumi CLI" in err and "install" in err


def test_console_script_runs_in_a_fresh_process(tmp_path, default_plan):
    """`python -m infratech.cli plan` as a user runs it: a new interpreter, exit code 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "infratech.cli", "plan", "--quiet", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    expected = sum(r.custom for r in default_plan.resources)  # the same program, recorded in this process
    assert json.loads((tmp_path / "ovh-gra11.json").read_text())["summary"]["custom_resources"] == expected > 13


def test_recording_should_leave_the_sdk_and_the_collector_as_it_found_them(project):
    import gc

    from pulumi.runtime import resource as sdk_resource

    trace, thresholds = sdk_resource._get_stack_trace, gc.get_threshold()
    record(project, "ovh-gra11")
    assert sdk_resource._get_stack_trace is trace
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0
