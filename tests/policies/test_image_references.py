"""One grammar of image references in three languages: the Python parser (stack config, job
files, the policy rules), the admission policy's CEL, and the charts' values.schema.json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from infratech import imageref
from infratech.policy.admission import POLICY_DIR

import cel_harness

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "charts"))
import chart_harness  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
PINNED = [
    "ghcr.io/infratech-souveraine/llm-train:0.1.0",
    "registry.example.fr:5000/team/vllm-openai:v0.32.0",
    f"registry.example.fr/llm-serve@{DIGEST}",
    f"registry.example.fr/llm-serve:0.1.0@{DIGEST}",
    "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
    "vllm/vllm-openai:v0.32.0",
]
UNPINNED = [  # parse refuses, CEL refuses
    "ghcr.io/infratech-souveraine/llm-train",
    "ghcr.io/infratech-souveraine/llm-train:latest",
    "registry.example.fr:5000/team/vllm-openai",
    "vllm/vllm-openai",
    "ghcr.io/infratech-souveraine/llm-train:main",
    "registry.example.fr:5000/team/vllm-openai:nightly",
]
MALFORMED = [  # pinned, but not a full reference: parse and the charts refuse, CEL judges the pin only
    "llm-train:0.1.0",
    "GHCR.io/Org/llm-train:0.1.0",
    "ghcr.io/org/llm-train:-dash",
]


def _cel_admits(ref: str) -> bool:
    [policy] = [d for d in yaml.safe_load_all((POLICY_DIR / "images.yaml").read_text().replace("ALLOWED_REGISTRIES", "['']"))
                if d["kind"] == "ValidatingAdmissionPolicy"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "t"},
           "spec": {"containers": [{"name": "c", "image": ref}]}}
    return cel_harness.decide(policy, pod).admitted


def _chart_patterns(chart: str) -> dict[str, str]:
    schema = json.loads((ROOT / "charts" / chart / "values.schema.json").read_text())
    image = schema["properties"]["image"]
    if "$ref" in image:  # "#/definitions/image"
        image = schema["definitions"][image["$ref"].rsplit("/", 1)[-1]]
    props = image["properties"]
    return {k: props[k]["pattern"] for k in ("repository", "tag", "digest")}


@pytest.mark.parametrize("ref", PINNED)
def test_a_pinned_reference_is_accepted_everywhere(ref):
    parsed = imageref.parse(ref)
    assert str(parsed) == ref
    assert imageref.pin_problem(ref) is None
    assert _cel_admits(ref)
    for chart in ("llm-train", "llm-eval", "llm-serve"):
        patterns = _chart_patterns(chart)
        assert re.fullmatch(patterns["repository"].strip("^$"), parsed.repository), (chart, ref)
        assert re.fullmatch(patterns["tag"].strip("^$"), parsed.tag), (chart, ref)
        assert re.fullmatch(patterns["digest"].strip("^$"), parsed.digest), (chart, ref)


@pytest.mark.parametrize("ref", UNPINNED)
def test_an_unpinned_reference_is_refused_everywhere(ref):
    with pytest.raises(ValueError, match="pinned by a tag or a digest"):
        imageref.parse(ref)
    assert imageref.pin_problem(ref) is not None
    assert not _cel_admits(ref)


@pytest.mark.parametrize("ref", MALFORMED)
def test_a_malformed_reference_is_refused_by_the_parser_and_the_charts(ref):
    with pytest.raises(ValueError):
        imageref.parse(ref)
    name, tag, _ = imageref.split(ref)
    patterns = _chart_patterns("llm-train")
    assert not (re.fullmatch(patterns["repository"].strip("^$"), name) and re.fullmatch(patterns["tag"].strip("^$"), tag))


def test_the_parser_and_the_charts_state_the_same_patterns():
    for chart in ("llm-train", "llm-eval", "llm-serve"):
        patterns = _chart_patterns(chart)
        assert patterns["repository"] == f"^{imageref.REPOSITORY}$"
        assert patterns["digest"] == f"^({imageref.DIGEST})?$"
        assert patterns["tag"] == f"^({imageref.TAG})?$"


@pytest.mark.parametrize("tag", imageref.MOVING_TAGS)
def test_every_moving_tag_is_refused_by_the_parser_and_the_admission_policy(tag):
    for spelled in (tag, tag.upper()):
        ref = f"ghcr.io/infratech-souveraine/llm-train:{spelled}"
        assert imageref.pin_problem(ref) == f"uses :{spelled}, a moving tag"
        assert not _cel_admits(ref), ref
    assert _cel_admits(f"ghcr.io/infratech-souveraine/llm-train:{tag}-1.2.0"), "a release tag that starts with a moving word is pinned"


MOVING_WORDS = re.compile(r"\(\?i\)\^?:?\(([a-z|]+)\)\$")


@pytest.mark.parametrize("where", ["policy/kubernetes/images.yaml", *(f"charts/{c}/templates/validations.yaml" for c in ("llm-train", "llm-eval", "llm-serve"))])
def test_the_admission_policy_and_the_charts_list_the_same_moving_tags_as_the_parser(where):
    path = POLICY_DIR / "images.yaml" if where.startswith("policy/") else ROOT / where
    lists = MOVING_WORDS.findall(path.read_text())
    assert lists, f"{where}: no moving-tag list found"
    for words in lists:
        assert tuple(words.split("|")) == imageref.MOVING_TAGS, where


@pytest.mark.parametrize("chart", ["llm-train", "llm-eval", "llm-serve"])
@pytest.mark.parametrize("tag", ["main", "Nightly"])
def test_a_chart_refuses_a_moving_tag_at_render_time(chart, tag):
    scenario = chart_harness.scenarios(chart)[0]
    namespace = chart_harness.scenario_namespace(chart, scenario)
    message = chart_harness.render_error(chart, scenario, namespace=namespace, sets=[f"image.tag={tag}"])
    assert "image.tag: never latest nor another moving tag" in message and repr(tag).replace("'", '"') in message
