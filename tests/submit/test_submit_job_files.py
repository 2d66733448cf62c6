"""infratech/cli/submit/models.py: job files are validated, every problem named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infratech.cli.submit import models
from infratech.cli.submit.models import JobFileError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"
TRAIN = {"name": "tiny", "team": "pretraining", "data_classification": "internal", "recipe": "debug_tiny"}
EVAL = {"name": "tiny-eval", "team": "pretraining", "data_classification": "internal", "checkpoint": "s3://@checkpoints/p/tiny/export", "tasks": ["arc_fr"]}
SERVE = {"name": "tiny", "team": "pretraining", "data_classification": "internal", "model": "s3://@checkpoints/p/tiny/export",
         "profile": "l40s"}


def problems(kind, data):
    with pytest.raises(JobFileError) as exc:
        models.parse(kind, data, "job.yaml")
    return exc.value.problems


@pytest.mark.parametrize("kind", ["train", "eval", "serve"])
def test_the_examples_should_be_valid(kind):
    job = models.load(kind, EXAMPLES / f"{kind}-tiny.yaml")
    assert job.team == "pretraining"


def test_defaults_should_make_a_one_gpu_run():
    job = models.parse("train", TRAIN)
    assert (job.nodes, job.gpus.per_node, job.gpus.model, job.max_restarts, job.checkpoint) == (1, 1, None, 3, None)


@pytest.mark.parametrize(
    "edit,expected",
    [
        ({"gpus": {"per_node": "two"}}, "gpus.per_node: must be a whole number"),
        ({"gpus": {"per_node": 0}}, "gpus.per_node: Input should be greater than or equal to 1"),
        ({"gpus": {"per_nod": 2}}, "gpus.per_nod: is not a known key; allowed: model, per_node"),
        ({"recipie": "x"}, "recipie: is not a known key; allowed: name, team, data_classification, image, resources, env, recipe, overrides, data, checkpoint, nodes, gpus, max_restarts, priority, deadline_hours"),
        ({"data_classification": "secret"}, "data_classification: must be one of 'public', 'internal', 'confidential' or 'restricted'"),
        ({"name": "Tiny_Run"}, "name: must be a DNS label of at most 40 characters"),
        ({"name": "a" * 41}, "name: must be a DNS label of at most 40 characters"),
        ({"checkpoint": "/scratch/run"}, "checkpoint: must be an s3:// location"),
        ({"image": "ghcr.io/infratech-souveraine/llm-train:latest"}, "image: must be a full image reference pinned by a tag or a digest"),
        ({"image": "llm-train"}, "image: must be a full image reference"),
        ({"overrides": {"run.dir": "/tmp"}}, "overrides: run.dir: set by the platform"),
        ({"overrides": {"steps": 3}}, "overrides: keys are dotted recipe keys such as train.steps: steps"),
        ({"nodes": 2.5}, "nodes: must be a whole number"),
        ({"resources": {"memory": "lots"}}, "resources.memory: must be a Kubernetes quantity"),
        ({"env": {"BAD-NAME": "x"}}, "env: variable names must be letters"),
    ],
)
def test_train_problems_should_name_the_field(edit, expected):
    found = problems("train", {**TRAIN, **edit})
    assert any(p.startswith(expected) for p in found), found


def test_missing_fields_should_all_be_reported_at_once():
    assert problems("train", {"name": "tiny"}) == ["team: is required", "data_classification: is required", "recipe: is required"]


@pytest.mark.parametrize(
    "kind,data,expected",
    [
        ("eval", {**EVAL, "tasks": ["arc_fr:many"]}, "tasks: each task is name or name:shots"),
        ("eval", {**EVAL, "gpus": {"count": 0}}, "gpus: count 0 (a CPU evaluation) needs backend: hf"),
        ("eval", {**EVAL, "backend": "vllm", "gpus": {"count": 0}}, "gpus: count 0 (a CPU evaluation) needs backend: hf"),
        ("eval", {**EVAL, "backend": "deepspeed"}, "backend: must be one of 'vllm' or 'hf'"),
        ("eval", {**EVAL, "heldout": "/data/heldout"}, "heldout: must be an s3:// location"),
        ("eval", {**EVAL, "checkpoint": "ckpt/tiny"}, "checkpoint: must be an s3:// location"),
        ("serve", {**SERVE, "gpus": {"count": 0}}, "gpus: count must be at least 1"),
        ("serve", {**SERVE, "replicas": {"min": 3, "max": 1}}, "replicas: min 3 is above max 1"),
        ("serve", {**SERVE, "force_unpromoted": "yes"}, "force_unpromoted: write out why"),
        ("serve", {**SERVE, "model": "/models/tiny"}, "model: must be an s3:// location"),
        ("serve", {**SERVE, "replicas": {"minimum": 1}}, "replicas.minimum: is not a known key; allowed: min, max, autoscale"),
        ("serve", {**SERVE, "profile": "a100"}, "profile: must be a serving profile for GPUs: h100, l4, l40s (workloads/serve/profiles, docs/serving.md) (given: \"a100\")"),
        ("serve", {**SERVE, "profile": "cpu"}, "profile: must be a serving profile for GPUs: h100, l4, l40s (workloads/serve/profiles, docs/serving.md) (given: \"cpu\")"),
        ("serve", {k: v for k, v in SERVE.items() if k != "profile"}, "profile: is required"),
        ("serve", {**SERVE, "max_model_len": 2048}, "max_model_len: is not a known key"),
    ],
)
def test_eval_and_serve_problems_should_name_the_field(kind, data, expected):
    found = problems(kind, data)
    assert any(p.startswith(expected) for p in found), found


def test_overrides_should_reach_the_recipe_as_text():
    job = models.parse("train", {**TRAIN, "overrides": {"train.steps": 1000000, "train.lr": 3e-4, "train.compile": True}})
    assert job.override_args() == {"train.steps": "1000000", "train.lr": "0.0003", "train.compile": "true"}


def test_a_file_that_is_not_a_mapping_or_not_yaml_should_say_so(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(JobFileError, match=r"bad.yaml: 1 problem\n  \(file\): must be a mapping"):
        models.load("train", bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(JobFileError, match="not valid YAML"):
        models.load("train", bad)
    with pytest.raises(JobFileError, match="cannot be read"):
        models.load("train", tmp_path / "missing.yaml")


def test_image_references_should_split_for_the_charts():
    assert models.Image.parse("ghcr.io/infratech-souveraine/llm-train:0.2.0") == models.Image(repository="ghcr.io/infratech-souveraine/llm-train", tag="0.2.0")
    digest = "sha256:" + "a" * 64
    assert models.Image.parse(f"docker.io/vllm/vllm-openai@{digest}").digest == digest


def test_examples_should_be_documented_yaml():
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text()
        assert text.startswith("#"), f"{path.name}: say what the example does"
        assert isinstance(yaml.safe_load(text), dict)


def test_a_value_of_no_allowed_type_should_be_one_problem_naming_the_types():
    found = problems("train", {**TRAIN, "overrides": {"train.steps": [1]}, "resources": {"cpu": [2]}})
    assert found == ["resources.cpu: must be a string or a whole number", "overrides.train.steps: must be a string, a whole number, a number or true or false"]


def test_problems_should_show_the_value_given_but_never_an_environment_value():
    shown = problems("train", {**TRAIN, "data_classification": "secret"})
    assert shown == ["data_classification: must be one of 'public', 'internal', 'confidential' or 'restricted' (given: \"secret\")"]
    hidden = problems("train", {**TRAIN, "env": {"HF_TOKEN": 98765432123}})
    assert hidden and hidden[0].startswith("env.HF_TOKEN: must be a string")
    assert not any("98765432123" in p for p in hidden), hidden
