"""What a stack pulls: every image, chart and node package, derived from the offline plan.

The plan (infratech/cli/plan) runs the program under mocks; each Helm release it declares gives the
chart (repository, version) and our values. Each chart's images come from :mod:`.table` (upstream
defaults at the pinned version) with our values laid over them, so an image the platform overrides
(jobset's, Slurm's alpine) is listed as the platform sets it. Images our own resources name (the
ClusterTrainingRuntime's training image) are found in the plan's inputs; the bundled charts'
images come from charts/*/values.yaml. Offline and deterministic: sorted, no clock, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ...config.common import SELF_BUILT_PROVIDERS
from ...program.platform.charts import PINS
from ..plan.runtime import Recording
from ...mirror import table
from ...mirror.refs import get, resolve

RELEASE = "kubernetes:helm.sh/v3:Release"
BUNDLED_CHARTS = ("llm-train", "llm-eval", "llm-serve")


class MirrorTableError(Exception):
    """A pinned chart whose images the table does not know at that version."""


@dataclass(frozen=True)
class Image:
    ref: str
    sources: tuple[str, ...]  # who runs it: "<chart> <values path>", "platform", "chart llm-train"


@dataclass
class Inventory:
    stack: str
    images: list[Image]
    charts: list[dict]  # {"name", "repository", "chart", "version"}
    node_packages: list[dict] = field(default_factory=list)  # {"kind", "url", ...}
    unlisted: list[str] = field(default_factory=list)  # subcharts whose images are not known offline

    def to_json(self) -> dict:
        return {
            "stack": self.stack,
            "images": [{"ref": i.ref, "sources": list(i.sources)} for i in self.images],
            "charts": self.charts,
            "node_packages": self.node_packages,
            "unlisted_subcharts": self.unlisted,
        }


def _enabled(node: table.ImageNode, values: dict) -> bool:
    if node.when is None:
        return True
    flag, default = node.when
    value = get(values, flag)
    return default if value is None else bool(value)


def _chart_key(chart: str) -> str:
    return chart.rstrip("/").rsplit("/", 1)[-1]


def chart_images(key: str, version: str, values: dict) -> list[tuple[str, str]]:
    """``(reference, values path)`` of every image the chart runs with these values."""
    entry = table.CHARTS.get(key)
    if entry is None or entry.version != version:
        known = entry.version if entry else "none"
        raise MirrorTableError(f"chart {key} {version}: infratech/mirror/table.py knows its images at {known}; "
                               "record the images of the new version there (from its values.yaml)")
    out = []
    for node in entry.nodes:
        if _enabled(node, values):
            out.append((resolve(node, entry.app_version, get(values, node.path)), node.path))
    # map entries the chart merges over defaults (Slurm nodesets/loginsets) may name their own images
    if key == "slurm":
        for group, defaults in (("nodesets", "nodesetDefaults"), ("loginsets", "loginsetDefaults")):
            for name, item in sorted((values.get(group) or {}).items()):
                for node in entry.nodes:
                    if node.path.startswith(defaults + "."):
                        sub = node.path[len(defaults) + 1:]
                        merged = {**(get(values, node.path) or {}), **(get(item, sub) or {})}
                        out.append((resolve(node, entry.app_version, merged), f"{group}.{name}.{sub}"))
    return out


def _own_images(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Image strings our own (non-Helm) resources declare: any ``image`` key holding a string."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{path}.{k}" if path else k
            if k == "image" and isinstance(v, str):
                found.append((v, p))
            else:
                found.extend(_own_images(v, p))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(_own_images(v, f"{path}[{i}]"))
    return found


def bundled_chart_images(root: Path) -> list[tuple[str, str]]:
    out = []
    for name in BUNDLED_CHARTS:
        values = yaml.safe_load((root / "charts" / name / "values.yaml").read_text(encoding="utf-8")) or {}
        image = values.get("image") or {}
        out.append((f"{image['repository']}:{image['tag']}", f"chart {name} image"))
    return out


def collect(rec: Recording, root: Path, provider: str, rke2_version: Optional[str] = None,
            mirror_base: Optional[str] = None) -> Inventory:
    """``mirror_base``: the stack's ``registry/prefix/`` where it has ``mirror:``; the list names
    the originals (what to copy into the mirror), not the mirror's copies."""
    found: dict[str, set[str]] = {}
    charts = []
    unlisted = []
    for r in rec.resources:
        if r.type == RELEASE:
            key = _chart_key(r.inputs.get("chart", ""))
            version = r.inputs.get("version", "")
            pin = PINS.get(key)
            repo = (r.inputs.get("repositoryOpts") or {}).get("repo")
            # the publisher's source, also where the stack's charts come from a mirror
            charts.append({"name": key, "chart": pin.chart if pin else r.inputs.get("chart"),
                           "repository": pin.repo if pin else repo, "version": version,
                           "namespace": pin.namespace if pin else r.inputs.get("namespace")})
            for ref, path in chart_images(key, version, r.inputs.get("values") or {}):
                found.setdefault(ref, set()).add(f"{key} {path}")
            for sub, why in sorted(table.CHARTS[key].unlisted_subcharts.items()):
                unlisted.append(f"{key} -> {sub} {why}")
        elif r.custom:
            for ref, path in _own_images(r.inputs):
                found.setdefault(ref, set()).add(f"{r.type.rsplit(':', 1)[-1]} {r.name} {path}")
    for ref, source in bundled_chart_images(root):
        found.setdefault(ref, set()).add(source)
    packages = []
    if provider in SELF_BUILT_PROVIDERS:
        packages.append({"kind": "apt", "url": table.NVIDIA_APT.format(**table.NVIDIA_APT_DEFAULT),
                         "for": "nvidia_driver, nvidia_container_toolkit"})
        version = rke2_version or _rke2_version(root)
        for artifact in table.RKE2_ARTIFACTS:
            packages.append({"kind": "rke2", "url": table.RKE2_RELEASES.format(version=version) + artifact.format(arch="amd64"),
                             "for": "rke2_node"})
    if mirror_base:
        original: dict[str, set[str]] = {}
        for ref, src in found.items():
            original.setdefault(ref[len(mirror_base):] if ref.startswith(mirror_base) else ref, set()).update(src)
        found = original
    images = [Image(ref, tuple(sorted(src))) for ref, src in sorted(found.items())]
    charts.sort(key=lambda c: c["name"])
    return Inventory(rec.stack, images, charts, packages, unlisted)


def platform_phase_overrides(cfg) -> dict[str, str]:
    """A self-built stack's plan has no platform until bootstrap writes the kubeconfig into the
    stack's config: plan it as after bootstrap, with a stand-in (never written anywhere)."""
    if cfg.provider in SELF_BUILT_PROVIDERS and cfg.kubeconfig is None:
        return {"infratech:kubeconfig": "apiVersion: v1\nkind: Config\n"}
    return {}


def _rke2_version(root: Path) -> str:
    defaults = yaml.safe_load((root / "roles" / "rke2_node" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    return defaults["rke2_node_version"]
