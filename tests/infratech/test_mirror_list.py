"""`infratech mirror list`: the images table against upstream values, and the list from the plan."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from infratech.cli.app import main
from infratech.cli.mirror import inventory
from infratech.mirror import table
from infratech.program.platform.charts import PINS
import upstream

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (upstream.REPO / "stacks").glob("Pulumi.*.yaml"))


def _upstream_values(key: str) -> dict:
    return upstream.chart_defaults(key)


def _image_nodes(values, path: str = "") -> set[str]:
    """Dotted paths of the image nodes in a chart's values: a mapping with a string ``repository``
    or ``image``, or a string under an ``images`` mapping (csi-s3)."""
    found: set[str] = set()
    if isinstance(values, dict):
        if any(isinstance(values.get(k), str) for k in ("repository", "image")) and path:
            found.add(path)
        for k, v in values.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, str) and path.split(".")[-1:] == ["images"]:
                found.add(p)
            found |= _image_nodes(v, p)
    return found


def test_the_table_covers_every_pinned_chart_at_its_pinned_version():
    assert set(table.CHARTS) == set(PINS)
    for key, pin in PINS.items():
        assert table.CHARTS[key].version == pin.version, f"{key}: table at {table.CHARTS[key].version}, pin {pin.version}"
        assert upstream.chart_version(key).lstrip("v") == pin.version.lstrip("v"), key


@pytest.mark.parametrize("key", sorted(PINS))
def test_every_image_entry_matches_the_upstream_values(key):
    entry = table.CHARTS[key]
    values = _upstream_values(key)
    for node in entry.nodes:
        got = inventory.get(values, node.path)
        expected = node.git or node.fields
        if node.style == "string":
            assert got == expected["value"], f"{key} {node.path}"
            continue
        assert isinstance(got, dict), f"{key} {node.path}: not an image node upstream"
        for field, value in expected.items():
            assert (got.get(field) or "") == value, f"{key} {node.path}.{field}: upstream {got.get(field)!r}, table {value!r}"
        for field in ("tag", "version"):
            if got.get(field):
                assert field in expected, f"{key} {node.path}: upstream sets {field} {got[field]!r}, the table does not"
        if node.when is not None:
            flag, default = node.when
            up = inventory.get(values, flag)
            assert (True if up is None else bool(up)) == default, f"{key} {flag}: upstream {up!r}, table {default!r}"


@pytest.mark.parametrize("key", sorted(PINS))
def test_no_image_of_the_upstream_values_is_missing(key):
    entry = table.CHARTS[key]
    listed = {n.path for n in entry.nodes} | set(entry.not_run)
    missing = _image_nodes(_upstream_values(key)) - listed
    assert not missing, f"{key}: image nodes upstream that the table neither lists nor explains: {sorted(missing)}"
    stale = set(entry.not_run) - _image_nodes(_upstream_values(key))
    assert not stale, f"{key}: not_run names nodes upstream does not have: {sorted(stale)}"


@pytest.mark.parametrize("key", sorted(PINS))
def test_an_empty_tag_becomes_the_app_version(key):
    meta = upstream._chart_meta(key)
    app = str(meta.get("appVersion", ""))
    if "devel" in app or "latest" in app or app.lstrip("v") == "0.0.0" or not app:
        # stamped at release (reference README): the chart's tag, except where the chart's
        # templates default to the chart version (kubeflow-trainer, jobset: "Defaults to the chart version")
        app = upstream.chart_version(key)
        assert table.CHARTS[key].app_version.lstrip("v") == app.lstrip("v"), key
    else:
        assert table.CHARTS[key].app_version == app, key


def test_the_subcharts_named_unlisted_are_the_enabled_dependencies():
    deps = {d["name"]: d for d in upstream._chart_meta("kube-prometheus-stack").get("dependencies") or []}
    for name, why in table.CHARTS["kube-prometheus-stack"].unlisted_subcharts.items():
        assert why.startswith(deps[name]["version"] + " "), name


def test_a_moved_pin_without_a_table_update_is_refused(monkeypatch):
    moved = dataclasses.replace(table.CHARTS["keda"], version="2.99.0")
    monkeypatch.setitem(table.CHARTS, "keda", moved)
    with pytest.raises(inventory.MirrorTableError, match="keda 2.20.2"):
        inventory.chart_images("keda", "2.20.2", {})


def test_our_overrides_win_over_the_defaults():
    images = dict(inventory.chart_images("gpu-operator", "v26.7.0", {"driver": {"version": "580.95.05"}}))
    assert "nvcr.io/nvidia/driver:580.95.05" in images
    off = dict(inventory.chart_images("gpu-operator", "v26.7.0", {"driver": {"enabled": False}, "migManager": {"enabled": False}}))
    assert not any("/driver:" in ref or "k8s-mig-manager" in ref for ref in off)


def _list(stack, capsys) -> dict:
    assert main(["mirror", "list", stack, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_list_of_a_managed_stack(capsys):
    out = _list("ovh-gra11", capsys)
    refs = {i["ref"] for i in out["images"]}
    for ref in ("nvcr.io/nvidia/driver:595.91.07", "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0",
                "nvcr.io/nvidia/k8s-device-plugin:v0.20.0", "nvcr.io/nvidia/gpu-operator:v26.7.0",
                "nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless", "quay.io/prometheus/prometheus:v3.14.0-distroless",
                "quay.io/prometheus/alertmanager:v0.34.0", "registry.k8s.io/jobset/jobset:v0.12.0",
                "quay.io/jetstack/cert-manager-controller:v1.21.1", "ghcr.io/kedacore/keda:2.20.2",
                "ghcr.io/infratech-souveraine/llm-train:0.1.0", "ghcr.io/infratech-souveraine/llm-serve:0.1.0",
                "cr.yandex/crp9ftr22d26age3hulg/yandex-cloud/csi-s3/csi-s3-driver:0.43.7"):
        assert ref in refs, ref
    assert not any("slinkyproject" in r for r in refs)  # Slurm is off on this stack
    assert out["node_packages"] == []
    charts = {c["name"]: c["version"] for c in out["charts"]}
    assert charts == {k: PINS[k].version for k in charts}
    assert all(":" in r.rsplit("/", 1)[-1] for r in refs)  # every image has a tag


def test_slurm_images_when_slurm_is_on(capsys):
    refs = {i["ref"] for i in _list("ovh-gra11-slurm", capsys)["images"]}
    assert "ghcr.io/slinkyproject/slurmd:26.05-ubuntu26.04" in refs
    assert "ghcr.io/slinkyproject/slurm-operator:1.2.1" in refs
    assert not any(r.endswith(":latest") for r in refs)  # the platform pins Slurm's alpine


def test_a_self_built_stack_lists_its_node_artifacts_and_its_platform(capsys):
    out = _list("baremetal-onprem", capsys)
    urls = [p["url"] for p in out["node_packages"]]
    version = yaml.safe_load((upstream.REPO / "roles/rke2_node/defaults/main.yml").read_text())["rke2_node_version"]
    assert f"https://github.com/rancher/rke2/releases/download/{version}/rke2-images.linux-amd64.tar.zst" in urls
    assert any(u.startswith("https://developer.download.nvidia.com/compute/cuda/repos/") for u in urls)
    assert out["charts"], "the platform phase is planned too"


@pytest.mark.parametrize("stack", STACKS)
def test_the_list_is_deterministic(stack, capsys):
    assert _list(stack, capsys) == _list(stack, capsys)
