"""charts/llm-train: values.schema.json and templates/validations.yaml refuse bad values, saying
which value and why (helm's own messages, as a user sees them)."""

from __future__ import annotations

import pytest
from chart_harness import CHARTS_DIR, render_error

SINGLE = CHARTS_DIR / "llm-train" / "ci" / "01-single-gpu-values.yaml"


@pytest.mark.parametrize(
    "sets,expected",
    [
        (["nodes=two"], "at '/nodes': got string, want integer"),
        (["gpu.perNode=0"], "at '/gpu/perNode': minimum"),
        (["gpu.modle=h100"], "at '/gpu': additional properties 'modle' not allowed"),
        (["queues=pretraining"], "additional properties 'queues' not allowed"),
        (["dataClassification=secret"], "at '/dataClassification': value must be one of 'public', 'internal', 'confidential', 'restricted'"),
        (["recipeOverrides.train\\.steps=100"], "at '/recipeOverrides/train.steps': got number, want string"),
        (["image.digest=sha256:abc"], "at '/image/digest'"),
        (["restarts.maxRestarts=-1"], "at '/restarts/maxRestarts': minimum"),
        (["datasets.claimName=Datasets"], "at '/datasets/claimName'"),
        (["datasets.mountPath=datasets"], "at '/datasets/mountPath'"),
    ],
)
def test_schema_should_refuse_wrong_types_and_unknown_keys_naming_them(sets, expected):
    message = render_error("llm-train", SINGLE, sets=sets)
    assert "values don't meet the specifications of the schema" in message
    assert expected in message


@pytest.mark.parametrize(
    "sets,release,expected",
    [
        (["queue="], "job-x", "queue: required"),
        (["recipe="], "job-x", "recipe: required"),
        (["checkpoint.uri=/scratch/ckpt"], "job-x", 'checkpoint.uri "/scratch/ckpt": must be an s3:// prefix'),
        (["gpu.model="], "job-x", "gpu.model: required"),
        (["image.tag=latest"], "job-x", "image.tag: never latest"),
        (["image.tag="], "job-x", "image: set image.tag or image.digest"),
        (["resources.limits.nvidia\\.com/gpu=2"], "job-x", "resources.limits.nvidia.com/gpu: GPUs are set by gpu.perNode"),
        (["recipeOverrides.run\\.dir=/tmp"], "job-x", "recipeOverrides.run.dir: set by the chart"),
        (["datasets.claimName=datasets", "datasets.mountPath=/scratch"], "job-x", 'datasets.mountPath "/scratch": /, /scratch and /dev/shm are the chart\'s own mounts'),
        ([], "1tiny", 'release name "1tiny": the job\'s name must be a DNS label starting with a letter'),
        ([], "a" * 41, "at most 40 characters"),
    ],
)
def test_guards_should_refuse_what_cannot_run(sets, release, expected):
    assert expected in render_error("llm-train", SINGLE, sets=sets, release=release)
