"""`infratech submit … --dry-run` prints exactly the chart's render for the job's values, valid
for the default stack; a real submission applies those objects, dependencies first, through the
cluster adapter; errors name the field and exit 2, a missing tool exits 3."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import upstream
import yaml
from fake_cluster import FakeCluster, workloads

from infratech.cli.submit import cli, images, render, resolve, values
from infratech.cli.submit import models as job_models

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "jobs"
sys.path.insert(0, str(ROOT / "tests" / "charts"))
from chart_harness import KUBERNETES_VERSION, denials, helm, pods_of, runtime_spec_from  # noqa: E402


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True), "ovh-gra11")
    return parser.parse_args(argv)


@pytest.fixture
def plan_outputs(default_plan, monkeypatch):
    """The default stack's outputs without recording its plan again."""
    outputs = dict(default_plan.outputs)
    monkeypatch.setattr(resolve, "stack_outputs", lambda project, stack, source: outputs)
    return outputs


def submit(project, argv, capsys, cluster=None):
    helm()  # skips, saying why, without helm
    code = cli.run(parse(argv), project, cluster_factory=lambda context: cluster)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_tiny_dry_run_should_print_valid_manifests_for_the_default_stacks_queue(project, default_plan, capsys):
    """The issue's acceptance test, end to end: the offline plan of ovh-gra11, the job file, the chart."""
    upstream.require_upstream()
    code, out, err = submit(project, ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run"], capsys)
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["kind"] for d in docs] == ["TrainJob"]
    trainjob = docs[0]
    queue = default_plan.outputs["queues"]["pretraining"]
    assert trainjob["metadata"]["namespace"] == queue["namespace"]
    assert trainjob["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == queue["local_queue"]
    assert trainjob["spec"]["suspend"] is True
    assert upstream.validate_custom_object(trainjob) == []
    assert denials(trainjob) == {}
    pod = pods_of(docs, runtime_spec_from(default_plan))[0]
    assert upstream.validate_core_object(pod, KUBERNETES_VERSION) == [] and denials(pod) == {}
    assert "# train tiny -> chart llm-train, stack ovh-gra11, team pretraining, namespace pretraining, LocalQueue pretraining" in err


@pytest.mark.parametrize("kind", ["train", "eval", "serve"])
def test_dry_run_should_equal_the_charts_render_for_the_same_values(kind, project, plan_outputs, capsys, tmp_path, built_images):
    job_file = EXAMPLES / f"{kind}-tiny.yaml"
    code, out, err = submit(project, ["submit", kind, str(job_file), "--dry-run"], capsys)
    assert code == 0, err
    job = job_models.load(kind, job_file)
    target = resolve.target(plan_outputs, "ovh-gra11", job.team)
    pins = images.pinned(kind, job, target.stack, target.image_registry, built_images[0])
    rel = values.release(kind, job, target, ROOT / "charts", images=pins.values)
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(rel.values))
    direct = subprocess.run(
        [helm(), "template", rel.name, str(ROOT / "charts" / rel.chart), "--namespace", rel.namespace, "--values", str(values_file)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out == direct
    assert render.documents(out) == render.documents(direct)


@pytest.mark.parametrize("kind", ["eval", "serve"])
def test_the_other_examples_should_render_valid_admitted_objects(kind, project, plan_outputs, capsys):
    upstream.require_upstream()
    code, out, err = submit(project, ["submit", kind, str(EXAMPLES / f"{kind}-tiny.yaml"), "--dry-run"], capsys)
    assert code == 0, err
    docs = render.documents(out)
    for obj in docs:
        check = upstream.validate_core_object(obj, KUBERNETES_VERSION) if upstream.is_core_api_version(obj["apiVersion"]) else upstream.validate_custom_object(obj)
        assert check == [], obj["kind"]
    for obj in [d for d in docs if d["kind"] in ("Job", "Deployment")] + pods_of(docs):
        assert denials(obj) == {}, obj["kind"]
    namespaces = {d["metadata"]["namespace"] for d in docs}
    assert namespaces == ({"serving"} if kind == "serve" else {"pretraining"})


def test_a_bad_job_file_should_exit_2_naming_the_field(project, plan_outputs, capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "tiny", "team": "pretraining", "data_classification": "internal", "recipe": "debug_tiny", "gpus": {"per_node": "two"}}))
    code, out, err = submit(project, ["submit", "train", str(bad), "--dry-run"], capsys)
    assert code == 2 and out == ""
    assert "gpus.per_node: must be a whole number" in err


def test_a_serving_profile_that_does_not_exist_should_exit_2_naming_the_profiles(project, plan_outputs, capsys, tmp_path):
    job = yaml.safe_load((EXAMPLES / "serve-tiny.yaml").read_text())
    job["profile"] = "a100"
    path = tmp_path / "a100.yaml"
    path.write_text(yaml.safe_dump(job))
    code, out, err = submit(project, ["submit", "serve", str(path), "--dry-run"], capsys)
    assert code == 2 and out == ""
    assert 'profile: must be a serving profile for GPUs: h100, l4, l40s (workloads/serve/profiles, docs/serving.md) (given: "a100")' in err


def test_the_served_profile_should_reach_the_server_and_a_reason_both_steps(project, plan_outputs, capsys, tmp_path):
    job = yaml.safe_load((EXAMPLES / "serve-tiny.yaml").read_text())
    job |= {"profile": "l4", "force_unpromoted": "A/B test against run 6, approved by the lead"}
    path = tmp_path / "l4.yaml"
    path.write_text(yaml.safe_dump(job))
    code, out, err = submit(project, ["submit", "serve", str(path), "--dry-run"], capsys)
    assert code == 0, err
    [deployment] = [d for d in render.documents(out) if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert "--profile=l4" in spec["containers"][0]["args"]
    for c in spec["initContainers"] + spec["containers"]:
        assert c["args"][-1] == "--force-unpromoted=A/B test against run 6, approved by the lead", c["name"]


def test_a_gpu_model_the_stack_lacks_should_exit_2(project, plan_outputs, capsys, tmp_path):
    job = yaml.safe_load((EXAMPLES / "train-tiny.yaml").read_text())
    job["gpus"]["model"] = "b200"
    path = tmp_path / "b200.yaml"
    path.write_text(yaml.safe_dump(job))
    code, _, err = submit(project, ["submit", "train", str(path), "--dry-run"], capsys)
    assert code == 2 and "gpus.model: 'b200' is not a GPU model of stack 'ovh-gra11'" in err


@pytest.mark.parametrize("kind,example", [("train", "train-tiny.yaml"), ("eval", "eval-tiny.yaml")])
def test_a_priority_class_the_stack_lacks_should_exit_2_naming_the_classes(kind, example, project, plan_outputs, capsys, tmp_path):
    job = yaml.safe_load((EXAMPLES / example).read_text())
    job["priority"] = "urgent"
    path = tmp_path / "urgent.yaml"
    path.write_text(yaml.safe_dump(job))
    code, _, err = submit(project, ["submit", kind, str(path), "--dry-run"], capsys)
    assert code == 2
    assert "priority: 'urgent' is not a priority class of stack 'ovh-gra11'; classes: production, research, preemptible" in err


def test_a_known_priority_class_should_label_the_job_for_kueue(project, plan_outputs, capsys, tmp_path):
    job = yaml.safe_load((EXAMPLES / "train-tiny.yaml").read_text())
    job["priority"] = "research"
    path = tmp_path / "research.yaml"
    path.write_text(yaml.safe_dump(job))
    code, out, err = submit(project, ["submit", "train", str(path), "--dry-run"], capsys)
    assert code == 0, err
    [trainjob] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "TrainJob"]
    assert trainjob["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "research"


def test_values_the_chart_refuses_should_exit_2_with_helms_message(project, plan_outputs, capsys, tmp_path):
    """The chart's schema has the last word on what the job file does not check itself (suite names)."""
    job = yaml.safe_load((EXAMPLES / "eval-tiny.yaml").read_text())
    job["suite"] = "french release"
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(job))
    code, out, err = submit(project, ["submit", "eval", str(path), "--dry-run"], capsys)
    assert code == 2 and out == ""
    assert "the chart refused the job's values" in err and "at '/suite': 'french release' does not match pattern" in err


def test_without_helm_it_should_say_how_to_get_it(project, plan_outputs, capsys, monkeypatch):
    monkeypatch.setenv(render.ENV_HELM, "/nonexistent/helm")
    code = cli.run(parse(["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--dry-run"]), project)
    err = capsys.readouterr().err
    assert code == 3 and "helm not found: `make .tools/helm`" in err and "/nonexistent/helm is not an executable file" in err


def test_a_real_submission_with_stack_should_need_the_deployed_stacks_outputs(project, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    helm()
    code = cli.run(parse(["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--stack", "ovh-gra11"]), project, cluster_factory=lambda c: FakeCluster())
    assert code == 3 and "needs the Pulumi CLI" in capsys.readouterr().err


def test_submission_should_apply_every_object_dependencies_first(project, plan_outputs, capsys):
    cluster = FakeCluster()
    code, out, err = submit(project, ["submit", "serve", str(EXAMPLES / "serve-tiny.yaml"), "--outputs", "plan"], capsys, cluster)
    assert code == 0, err
    kinds = [obj["kind"] for obj, _ in cluster.applied]
    # no NetworkPolicy: the chart's is off by default, the platform's own apply in `serving` (team
    # members may not create NetworkPolicies there, which would add to and reopen the default-deny)
    assert kinds == ["Service", "PodDisruptionBudget", "ServiceMonitor", "Deployment", "ScaledObject"]
    assert all(dry is False for _, dry in cluster.applied)
    assert "Deployment/tiny applied" in out


def test_server_dry_run_should_reach_the_api_server_as_a_dry_run(project, plan_outputs, capsys):
    cluster = FakeCluster()
    code, out, _ = submit(project, ["submit", "train", str(EXAMPLES / "train-tiny.yaml"), "--outputs", "plan", "--server-dry-run"], capsys, cluster)
    assert code == 0
    assert [(o["kind"], dry) for o, dry in cluster.applied] == [("TrainJob", True)]
    assert "TrainJob/tiny validated (server dry run)" in out


def test_jobs_commands_should_read_the_namespace_through_the_adapter(project, capsys):
    cluster = FakeCluster(workloads())
    code, out, _ = submit(project, ["jobs", "list", "-n", "applied"], capsys, cluster)
    assert code == 0 and "mistral-ft-7" in out and "Preempted" in out
    code, out, _ = submit(project, ["jobs", "status", "tiny", "-n", "pretraining"], capsys, cluster)
    assert code == 0 and "state:     Running" in out
    code, _, err = submit(project, ["jobs", "cancel", "nope", "-n", "pretraining"], capsys, cluster)
    assert code == 2 and "nothing of job 'nope'" in err


def test_jobs_by_team_should_look_the_namespace_up(project, plan_outputs, capsys):
    code, out, _ = submit(project, ["jobs", "list", "--team", "pretraining", "--outputs", "plan"], capsys, FakeCluster(workloads()))
    assert code == 0 and "llama-1b-run3" in out
    code, _, err = submit(project, ["jobs", "list", "--team", "nobody", "--stack", "ovh-gra11"], capsys, FakeCluster())
    assert code == 2 and "team: 'nobody' is not a team" in err
