"""`mirror:` set on a copy of every shipped stack: nothing is pulled from anywhere else.

The scan here is independent of the program's own code for images (infratech/mirror/refs.py): it
looks for any string in any resource's inputs that names a public registry host.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from infratech.cli.app import main
from infratech.cli.commands.mirror import _inventory
from infratech.cli.mirror.inventory import platform_phase_overrides
from infratech.cli.plan import policy_verdicts, record
from infratech.cli.stacks import find_project, stack_config
from infratech.mirror import table
from infratech.mirror.refs import mirror_ref
from infratech.policy.model import Resource, Settings
from infratech.policy.rules import images_from_mirror

PROJECT = find_project(Path(__file__).resolve().parents[2])
STACKS = PROJECT.stacks()
REGISTRY, PREFIX = "registry.example.fr:5000", "infratech/mirror"
BASE = f"{REGISTRY}/{PREFIX}/"
CHARTS = "oci://registry.example.fr:5000/infratech/charts"
MIRROR = f"""  infratech:mirror:
    registry: {REGISTRY}
    prefix: {PREFIX}
    chart_repository: {CHARTS}
"""
# every public registry a chart or the platform names (docs/supply-chain.md), as the start of a reference
_PUBLIC = re.compile(r"(?<![\w./-])(nvcr\.io|quay\.io|ghcr\.io|docker\.io|registry\.k8s\.io|cr\.yandex|[\w-]+-docker\.pkg\.dev)/")


def _strings(value, path=""):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _mirror_project(tmp_path: Path):
    for stack in STACKS:
        text = PROJECT.stack_file(stack).read_text(encoding="utf-8")
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(text.rstrip("\n") + "\n" + MIRROR, encoding="utf-8")
    return dataclasses.replace(PROJECT, stack_dir=tmp_path)


def _record(project, stack):
    return record(project, stack, secret_overrides=platform_phase_overrides(stack_config(project, stack)))


@pytest.mark.parametrize("stack", STACKS)
def test_with_a_mirror_no_image_comes_from_elsewhere(stack, tmp_path):
    project = _mirror_project(tmp_path)
    rec = _record(project, stack)
    releases = rec.by_type("kubernetes:helm.sh/v3:Release")
    assert releases, "the platform is planned"
    outside = [(r.name, path, s) for r in rec.resources if r.package == "kubernetes"
               for path, s in _strings(r.inputs) if _PUBLIC.search(s) and not s.startswith(BASE)]
    # the charts' sources are not images: they come from the OCI chart mirror, checked below
    outside = [o for o in outside if o[1] != "chart"]
    assert not outside, f"image references outside the mirror: {outside[:5]}"
    for r in releases:
        assert r.inputs["chart"].startswith(CHARTS + "/") and not r.inputs.get("repositoryOpts"), r.name
    mirrored = sum(s.startswith(BASE) for r in rec.resources for _, s in _strings(r.inputs))
    assert mirrored >= len(releases)  # the scan saw the mirrored references
    verdict = next(v for v in policy_verdicts(project, rec) if v.rule.id == "images-from-mirror")
    assert verdict.status == "pass", verdict.violations


@pytest.mark.parametrize("stack", STACKS)
def test_without_a_mirror_the_plan_differs_only_in_image_references(stack, tmp_path):
    plain = _record(PROJECT, stack)
    assert not any(BASE in s for r in plain.resources for _, s in _strings(r.inputs))
    verdict = next(v for v in policy_verdicts(PROJECT, plain) if v.rule.id == "images-from-mirror")
    assert verdict.status == "off"
    mirrored = _record(_mirror_project(tmp_path), stack)
    by_name = {(r.type, r.name): r for r in mirrored.resources}
    assert sorted(by_name) == sorted((r.type, r.name) for r in plain.resources)
    for a in plain.resources:
        b = by_name[(a.type, a.name)]
        if a.name == "vap-infratech-images":
            # the registries team pods may pull from: the mirror's copies of the allowed ones only
            expression = b.inputs["spec"]["validations"][0]["expression"]
            assert f"'{BASE}ghcr.io/infratech-souveraine/'" in expression and "'ghcr.io/" not in expression
        elif a.type != "kubernetes:helm.sh/v3:Release":
            # our own resources: the same, but for the images, which are the mirror's copies
            differing = {p: (x, y) for (p, x), (_, y) in zip(_strings(a.inputs), _strings(b.inputs)) if x != y}
            assert all(y == mirror_ref(x, REGISTRY, PREFIX) for x, y in differing.values()), (a.name, differing)
        else:
            keep = ("name", "namespace", "version", "atomic", "timeout")
            assert {k: a.inputs.get(k) for k in keep} == {k: b.inputs.get(k) for k in keep}


def _release(chart: str, values: dict) -> Resource:
    return Resource(urn="urn:x", type="kubernetes:helm.sh/v3:Release", name="r", props={"chart": chart, "values": values})


def test_the_rule_fails_an_image_from_elsewhere_and_a_default_left_unset():
    settings = Settings(mirror=BASE)
    keda = {"image": {n.path.split(".", 1)[1]: {"registry": REGISTRY, "repository": f"{PREFIX}/ghcr.io/kedacore/x", "tag": "1"}
                      for n in table.CHARTS["keda"].nodes}}
    assert images_from_mirror(_release("keda", keda), settings) == []
    keda["image"]["keda"]["registry"] = "ghcr.io"
    problems = images_from_mirror(_release("keda", keda), settings)
    assert len(problems) == 1 and "image.keda" in problems[0] and "ghcr.io" in problems[0]
    del keda["image"]["webhooks"]
    assert any("image.webhooks is not set" in p for p in images_from_mirror(_release("keda", keda), settings))
    assert images_from_mirror(_release("keda", {}), Settings()) == []  # no mirror: nothing to check


def test_a_bad_mirror_is_refused_with_exit_2(tmp_path, capsys):
    text = PROJECT.stack_file("ovh-gra11").read_text(encoding="utf-8")
    (tmp_path / "Pulumi.yaml").write_text((PROJECT.root / "Pulumi.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bad.yaml").write_text(
        text.rstrip("\n") + "\n  infratech:mirror:\n    registry: https://registry.example.fr/\n", encoding="utf-8")
    assert main(["--project-dir", str(tmp_path), "mirror", "list", "bad"]) == 2
    err = capsys.readouterr().err
    assert "mirror.registry" in err and "remove the scheme" in err


def test_the_list_of_a_mirrored_stack_names_the_originals(tmp_path):
    """What to copy into the mirror: the same list with or without ``mirror:`` set."""
    plain = _inventory(PROJECT, "ovh-gra11-slurm").to_json()
    mirrored = _inventory(_mirror_project(tmp_path), "ovh-gra11-slurm").to_json()
    assert [i["ref"] for i in mirrored["images"]] == [i["ref"] for i in plain["images"]]
    assert mirrored["charts"] == plain["charts"]
