"""Every container the charts and the training runtime start runs as a non-root UID of 10000 or
more, the user the workload images are built with; a lower one is refused at render time."""

from __future__ import annotations

import pytest
from chart_harness import CHARTS_DIR, render_error, rendered, scenario_namespace, scenarios

from infratech.program.platform.trainer import RUN_AS_USER


def _pod_specs(obj: dict):
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "Job"):
        yield spec["template"]["spec"]
    elif obj["kind"] == "TrainJob":
        for patch in spec.get("runtimePatches", []):
            for job in patch.get("trainingRuntimeSpec", {}).get("template", {}).get("spec", {}).get("replicatedJobs", []):
                yield job["template"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("chart", ["llm-train", "llm-eval", "llm-serve"])
def test_every_pod_runs_as_a_high_non_root_uid(chart):
    found = 0
    for scenario in scenarios(chart):
        for obj in rendered(chart, scenario, namespace=scenario_namespace(chart, scenario)):
            for pod in _pod_specs(obj):
                ctx = pod.get("securityContext", {})
                assert ctx.get("runAsNonRoot") is not False and ctx.get("runAsUser", 0) >= 10000, (chart, scenario.name, ctx)
                assert ctx["runAsUser"] == RUN_AS_USER
                found += 1
    assert found, f"{chart}: no pod rendered"


@pytest.mark.parametrize("chart", ["llm-train", "llm-eval", "llm-serve"])
def test_a_low_uid_is_refused(chart):
    [scenario, *_] = scenarios(chart)
    error = render_error(chart, scenario, namespace=scenario_namespace(chart, scenario), sets=("runAsUser=1000",))
    assert "/runAsUser" in error and "want 10,000" in error


def test_the_training_runtime_runs_as_the_images_user(default_plan):
    [runtime] = default_plan.by_type("kubernetes:trainer.kubeflow.org/v1alpha1:ClusterTrainingRuntime")
    text = str(runtime.inputs)
    assert f"'runAsUser': {RUN_AS_USER}" in text and RUN_AS_USER >= 10000
