"""infratech/cli/submit/resolve.py and values.py: a job placed with the stack's outputs (the default
stack's offline plan): the team's namespace and LocalQueue, the runtime, the GPU flavour; and
refused, naming the field, when the stack cannot run it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from infratech.cli.submit import models, resolve, values
from infratech.cli.submit.models import JobFileError

CHARTS = Path(__file__).resolve().parents[2] / "charts"
TRAIN = {"name": "tiny", "team": "pretraining", "data_classification": "internal", "recipe": "debug_tiny"}


@pytest.fixture(scope="module")
def outputs(default_plan):
    return copy.deepcopy(dict(default_plan.outputs))


def target(outputs, team="pretraining"):
    return resolve.target(outputs, "ovh-gra11", team)


def train_release(outputs, **edit):
    job = models.parse("train", {**TRAIN, **edit})
    return values.release("train", job, target(outputs, job.team), CHARTS)


def test_the_team_should_resolve_to_its_namespace_and_local_queue(outputs):
    t = target(outputs, "applied")
    assert (t.namespace, t.local_queue) == (outputs["queues"]["applied"]["namespace"], outputs["queues"]["applied"]["local_queue"])
    assert t.training_runtime == "torch-distributed-infratech" and t.serving_namespace == "serving"
    assert {p.gpu_model for p in t.gpu_pools} == {"h100-80gb", "l40s"}
    assert t.object_store_port == 443


def test_an_unknown_team_should_be_refused_naming_the_teams(outputs):
    with pytest.raises(JobFileError) as exc:
        target(outputs, "pretrain")
    assert exc.value.problems == ["team: 'pretrain' is not a team of stack 'ovh-gra11'; teams: applied, pretraining"]


def test_a_stack_without_queues_should_refuse_every_job(outputs):
    with pytest.raises(JobFileError, match="has no team queues"):
        resolve.target({**outputs, "queues": {}}, "ovh-gra11", "pretraining")


def test_train_values_should_carry_queue_runtime_flavour_and_checkpoints(outputs):
    rel = train_release(outputs, gpus={"per_node": 1}, nodes=2)
    v = rel.values
    assert (rel.chart, rel.name, rel.namespace) == ("llm-train", "tiny", "pretraining")
    assert v["queue"] == "pretraining" and v["runtime"]["name"] == "torch-distributed-infratech"
    assert v["gpu"]["model"] == "h100-80gb"  # the training pool's model when the job names none
    assert (v["nodes"], v["gpu"]["perNode"]) == (2, 1)
    assert v["checkpoint"]["uri"] == "s3://@checkpoints/pretraining/tiny"
    assert v["dataClassification"] == "internal" and v["team"] == "pretraining"


def test_serving_should_default_to_the_inference_pool_and_serving_namespace(outputs):
    job = models.parse("serve", {"name": "tiny", "team": "pretraining", "data_classification": "internal", "model": "s3://@checkpoints/p/t/export",
                                  "profile": "l40s"})
    rel = values.release("serve", job, target(outputs), CHARTS)
    assert rel.namespace == "serving" and rel.values["gpu"]["model"] == "l40s"
    assert rel.values["service"]["gatewayNamespace"] == "serving"
    assert rel.values["profile"] == "l40s"
    assert rel.values["model"]["servedName"] == "tiny"


@pytest.mark.parametrize(
    "edit,expected",
    [
        ({"gpus": {"model": "a100-80gb"}}, "gpus.model: 'a100-80gb' is not a GPU model of stack 'ovh-gra11'; models: h100-80gb, l40s"),
        ({"gpus": {"per_node": 8}}, "gpus.per_node: 8 GPUs on one node, but the h100-80gb nodes of stack 'ovh-gra11' have 1"),
        ({"nodes": 5}, "nodes: 5 h100-80gb GPUs in all, but stack 'ovh-gra11' has 4 at most"),
    ],
)
def test_what_the_stack_cannot_run_should_be_refused_naming_the_field(outputs, edit, expected):
    with pytest.raises(JobFileError) as exc:
        train_release(outputs, **edit)
    assert exc.value.problems[0].startswith(expected)


def test_cpu_evaluation_should_need_no_gpu_pool(outputs):
    job = models.parse("eval", {"name": "e", "team": "applied", "data_classification": "public", "checkpoint": "s3://b/c", "tasks": ["arc_fr"], "backend": "hf", "gpus": {"count": 0}})
    v = values.release("eval", job, target(outputs, "applied"), CHARTS).values
    assert v["gpu"]["count"] == 0 and v["gpu"]["model"] == "" and v["queue"] == "applied"


def test_stack_outputs_should_come_from_the_offline_plan_without_the_pulumi_cli(project):
    outputs = resolve.stack_outputs(project, "ovh-gra11", "plan")
    assert outputs["queues"]["pretraining"]["local_queue"] == "pretraining"


def test_deployed_outputs_should_need_the_pulumi_cli(project, monkeypatch):
    from infratech.cli.deploy import PulumiCliMissing

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PulumiCliMissing, match="needs the Pulumi CLI"):
        resolve.stack_outputs(project, "ovh-gra11", "stack")
