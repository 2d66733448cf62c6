"""Every chart, with every scenario of its ci/ folder: helm lint passes, helm template renders,
every object is valid for the cluster (core kinds: kubernetes-validate strict for the stack's
Kubernetes version; TrainJob, ScaledObject, ServiceMonitor: their CRDs at the versions the platform
pins), and what the platform's guardrails require holds for every workload and every pod it makes.
"""

from __future__ import annotations

import re

import pytest
import upstream
from chart_harness import (
    CHARTS,
    CHARTS_DIR,
    KUBERNETES_VERSION,
    REGISTRIES,
    containers,
    denials,
    helm,
    pods_of,
    render_error,
    rendered,
    runtime_spec_from,
    scenario_namespace,
    scenarios,
)

from infratech.cli.submit import render

CASES = [pytest.param(chart, path, id=f"{chart}/{path.name}") for chart in CHARTS for path in scenarios(chart)]
WORKLOAD_KINDS = {"TrainJob", "Job", "Deployment"}
PINNED = re.compile(r"(:[A-Za-z0-9_][A-Za-z0-9._-]*|@sha256:[a-f0-9]{64})$")


@pytest.fixture(scope="module")
def runtime(default_plan):
    return runtime_spec_from(default_plan)


def objects(chart, path):
    return rendered(chart, path, namespace=scenario_namespace(chart, path))


def test_every_chart_should_have_scenarios():
    for chart in CHARTS:
        assert len(scenarios(chart)) >= 2, f"{chart}: at least two ci/NN-<scenario>-values.yaml"
        for path in scenarios(chart):
            assert re.fullmatch(r"\d\d-[a-z0-9-]+-values\.yaml", path.name), path


@pytest.mark.parametrize("chart,path", CASES)
def test_should_pass_helm_lint(chart, path):
    report = render.lint(CHARTS_DIR / chart, scenario_namespace(chart, path), (path,), helm=helm())
    assert "0 chart(s) failed" in report


@pytest.mark.parametrize("chart,path", CASES)
def test_should_render_objects_valid_for_the_cluster(chart, path):
    upstream.require_upstream()
    found = objects(chart, path)
    assert found, "renders nothing"
    for obj in found:
        if upstream.is_core_api_version(obj["apiVersion"]):
            errors = upstream.validate_core_object(obj, KUBERNETES_VERSION)
        else:
            errors = upstream.validate_custom_object(obj)
        assert errors == [], f"{obj['kind']} {obj['metadata']['name']}: {errors}"


@pytest.mark.parametrize("chart,path", CASES)
def test_pods_should_be_valid_pods(chart, path, runtime):
    """The pods the workloads make (for a TrainJob: runtime + trainer + patches) are valid Pods."""
    for pod in pods_of(objects(chart, path), runtime):
        assert upstream.validate_core_object(pod, KUBERNETES_VERSION) == [], pod["metadata"]["name"]


@pytest.mark.parametrize("chart,path", CASES)
def test_every_object_should_carry_the_job_and_classification_labels(chart, path):
    for obj in objects(chart, path):
        labels = obj["metadata"]["labels"]
        assert labels["infratech.io/job"] == "job-x"
        assert labels["infratech.io/data-classification"] in ("public", "internal", "confidential", "restricted")
        assert labels["app.kubernetes.io/instance"] == "job-x"


@pytest.mark.parametrize("chart,path", CASES)
def test_workloads_and_their_pods_should_be_admitted_by_the_platforms_policies(chart, path, runtime):
    found = objects(chart, path)
    for obj in [o for o in found if o["kind"] in WORKLOAD_KINDS] + pods_of(found, runtime):
        assert denials(obj) == {}, f"{obj['kind']} {obj['metadata']['name']}"


@pytest.mark.parametrize("chart,path", CASES)
def test_images_should_be_pinned_and_from_allowed_registries(chart, path, runtime):
    for pod in pods_of(objects(chart, path), runtime):
        for c in containers(pod):
            assert c["image"].startswith(REGISTRIES), c["image"]
            assert PINNED.search(c["image"]) and not c["image"].endswith(":latest"), c["image"]


@pytest.mark.parametrize("chart,path", CASES)
def test_pods_should_meet_pod_security_restricted(chart, path, runtime):
    """No privilege, no host access, non-root, no capabilities, the runtime's seccomp profile."""
    for pod in pods_of(objects(chart, path), runtime):
        spec = pod["spec"]
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert all("hostPath" not in v for v in spec.get("volumes") or [])
        pod_ctx = spec.get("securityContext") or {}
        for c in containers(pod):
            ctx = c.get("securityContext") or {}
            assert ctx.get("privileged") is not True, c["name"]
            assert ctx.get("allowPrivilegeEscalation") is False, c["name"]
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
            assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, c["name"]
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile")) or {}
            assert seccomp.get("type") == "RuntimeDefault", c["name"]
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser", 1)) != 0, c["name"]


@pytest.mark.parametrize("chart", CHARTS)
def test_should_refuse_to_render_without_the_required_values(chart):
    """The defaults alone are not a job: a guard names the first missing value."""
    message = render_error(chart, namespace="serving" if chart == "llm-serve" else "pretraining")
    first = {"llm-train": "queue: required", "llm-eval": "queue: required", "llm-serve": "model.uri: required"}[chart]
    assert first in message


@pytest.mark.parametrize("chart", CHARTS)
def test_should_keep_values_schema_and_defaults_in_step(chart):
    """Every default value is declared by the schema and the schema accepts the defaults."""
    import json

    import jsonschema
    import yaml

    root = CHARTS_DIR / chart
    schema = json.loads((root / "values.schema.json").read_text())
    defaults = yaml.safe_load((root / "values.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert list(jsonschema.Draft7Validator(schema).iter_errors(defaults)) == []
    assert set(defaults) == set(schema["properties"]), "values.yaml and values.schema.json list different keys"


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_should_be_documented(chart):
    """Each key of values.yaml has a `# --` comment right above it, or is a section whose keys
    do (a documented key covers the keys below it: a free-form map such as `resources`)."""
    lines = (CHARTS_DIR / chart / "values.yaml").read_text().splitlines()
    undocumented, covered = [], None
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):(.*)$", line)
        if not m:
            continue
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        if covered is not None and indent > covered:
            continue
        covered = None
        block, j = [], i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            block.append(lines[j].strip())
            j -= 1
        is_section = rest.strip() == "" and i + 1 < len(lines) and len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent
        if any(b.startswith("# --") for b in block):
            covered = indent
        elif not is_section:
            undocumented.append(key)
    assert undocumented == []


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_should_be_pinned_and_follow_the_layout(chart):
    import yaml

    root = CHARTS_DIR / chart
    meta = yaml.safe_load((root / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == chart
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", str(meta["appVersion"])), "appVersion pins a release"
    templates = sorted(p.name for p in (root / "templates").iterdir())
    for name in templates:
        assert name in ("_helpers.tpl", "validations.yaml", "NOTES.txt") or re.fullmatch(r"[a-z]+-[a-z]+\.yaml", name), name
    readme = (root / "README.md").read_text()
    for section in ("## Requirements", "## Values", "## Example", "## Upgrading"):
        assert section in readme, f"{chart}/README.md lacks {section}"


@pytest.mark.parametrize("chart", CHARTS)
def test_readme_values_table_should_match_values_yaml(chart):
    from chart_harness import values_table

    assert values_table(chart) in (CHARTS_DIR / chart / "README.md").read_text(), (
        f"charts/{chart}/README.md: Values table out of date; `.venv/bin/python tests/charts/chart_harness.py` rewrites it"
    )
