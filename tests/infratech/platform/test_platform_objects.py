"""What every shipped stack declares for the platform is valid against upstream data, offline:
Helm releases pinned exactly and configured only with keys their chart has, custom resources
valid against their CRDs, built-in objects valid for the stack's Kubernetes version."""

from __future__ import annotations

import functools
import tempfile
import re
from pathlib import Path

import pytest
import yaml
import upstream

from infratech.cli.plan import record
from infratech.cli.stacks import Project, find_project
from infratech.config.common import SELF_BUILT_PROVIDERS

PROJECT = find_project(Path(__file__).resolve().parents[3])
RELEASE = "kubernetes:helm.sh/v3:Release"
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
# where a plan may hold a placeholder instead of a value in a Kubernetes object (see strip_placeholders)
EXPECTED_PLACEHOLDERS = [re.compile(r"^kubernetes:core/v1:Secret \S+: (data|stringData)\b")]

pytestmark = [
    pytest.mark.skipif(upstream.upstream_dir() is None, reason=upstream.skip_reason()),
    pytest.mark.parametrize("stack", PROJECT.stacks()),
]


def _platform_phase(stack: str):
    """The project as the platform phase sees ``stack``: a self-built cluster (outscale, baremetal)
    declares its platform once the bootstrap has written the kubeconfig into the stack's config
    (a secret); the shipped file, before any bootstrap, has none. Other stacks as shipped."""
    data = yaml.safe_load(PROJECT.stack_file(stack).read_text(encoding="utf-8"))
    if data["config"].get("infratech:provider") not in SELF_BUILT_PROVIDERS:
        return PROJECT
    data["config"]["infratech:kubeconfig"] = {"secure": "v1:written-by-the-bootstrap-phase"}
    stack_dir = Path(tempfile.mkdtemp(prefix="platform-phase-"))
    (stack_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return Project(root=PROJECT.root, name=PROJECT.name, stack_dir=stack_dir, main=PROJECT.main)


@functools.lru_cache(maxsize=None)
def _platform(stack: str):
    rec = record(_platform_phase(stack), stack)
    notes: list[str] = []
    objects = [(r, obj) for r in rec.resources if (obj := upstream.object_from_resource(r, notes)) is not None]
    return rec, objects, notes


def platform(stack: str):
    """(recording, [(resource, manifest)], placeholder notes) of the stack, recorded once."""
    rec, objects, notes = _platform(stack)
    assert objects and rec.by_type(RELEASE), f"{stack}: every shipped stack installs the platform"
    return rec, objects, notes


def _fail_on(problems: list[str], what: str) -> None:
    assert not problems, f"{len(problems)} {what}:\n" + "\n".join(problems)


def test_helm_releases_are_pinned_and_their_values_known_to_the_chart(stack):
    rec, _, _ = platform(stack)
    problems = []
    for res in rec.by_type(RELEASE):
        inputs, where = res.inputs, f"{res.name}"
        chart, version = inputs.get("chart") or "", str(inputs.get("version") or "")
        repo = (inputs.get("repositoryOpts") or {}).get("repo")
        if not chart or not (repo or chart.startswith("oci://")):
            problems.append(f"{where}: chart {chart!r} needs repositoryOpts.repo or an oci:// reference")
        if not EXACT_VERSION.match(version):
            problems.append(f"{where}: version {version!r} is not one exact version")
        key = chart.rstrip("/").rsplit("/", 1)[-1]
        if key not in upstream.CHARTS:
            problems.append(f"{where}: no upstream reference data for chart {key!r}")
            continue
        if version.lstrip("v") != upstream.chart_version(key).lstrip("v"):
            problems.append(f"{where}: pins {key} {version}, the upstream data is of {upstream.chart_version(key)}")
        values = inputs.get("values") or {}
        if not isinstance(values, dict):
            problems.append(f"{where}: values are {values!r} in the plan, so they cannot be checked")
            continue
        values, _ = upstream.strip_placeholders(values, keep_keys=True)
        problems += [f"{where} ({key}): {p}" for p in upstream.chart_value_problems(key, values)]
    _fail_on(problems, "problems in Helm releases")


def test_custom_resources_match_their_crds(stack):
    _, objects, _ = platform(stack)
    problems = [
        f"{res.type} {res.name}: {err}"
        for res, obj in objects
        if not upstream.is_core_api_version(obj["apiVersion"])
        for err in upstream.validate_custom_object(obj)
    ]
    _fail_on(problems, "custom resources invalid against their CRDs")


def test_builtin_objects_match_the_kubernetes_schema(stack):
    rec, objects, _ = platform(stack)
    version = upstream.kubernetes_version(rec)
    problems = [
        f"{res.type} {res.name}: {err}"
        for res, obj in objects
        if upstream.is_core_api_version(obj["apiVersion"])
        for err in upstream.validate_core_object(obj, version)
    ]
    _fail_on(problems, f"objects invalid for Kubernetes {version}")


def test_placeholders_only_where_expected(stack):
    _, _, notes = platform(stack)
    _fail_on([n for n in notes if not any(p.match(n) for p in EXPECTED_PLACEHOLDERS)], "values unknown in the plan, so not validated")
