"""The plan as a picture: a Mermaid flowchart that GitHub and GitLab render as it is.

Where things run and where data is kept, from the recording alone: the provider's components in a
box named after the provider, region and country; the platform's components in a box for the
cluster; every resource counted, by type, under the component that declared it; and the data
paths: the object store's buckets, the Kubernetes API the deployer and the platform go through,
the registry the workload images come from.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Optional

from .runtime import Recording, Resource

PROVIDER_TITLES = {"ovh": "OVHcloud", "scaleway": "Scaleway", "existing": "an existing cluster", "outscale": "3DS Outscale",
                   "baremetal": "your own servers"}
BUCKETS = ("ovh:index/cloudStorageObjectBucket:CloudStorageObjectBucket", "scaleway:object/bucket:Bucket")


def _id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _label(text: str) -> str:
    return text.replace('"', "'")


def _kind(res: Resource) -> str:
    return res.type.rsplit(":", 1)[-1]


def _counts(component: Resource) -> Counter:
    """Custom resources directly under ``component``, by kind (providers' own resources excluded)."""
    return Counter(_kind(c) for c in component.children if c.custom and not c.type.startswith("pulumi:providers:"))


def _ordered(resources) -> list[Resource]:
    """Registration order varies from run to run (the SDK registers asynchronously): sort."""
    return sorted(resources, key=lambda r: (r.type, r.name))


def _component_lines(component: Resource, indent: str) -> list[str]:
    cid = _id(component.urn.rsplit("::", 1)[-1] + "_" + _kind(component))
    lines = [f'{indent}subgraph {cid}["{_label(_kind(component) + " " + component.name)}"]', f"{indent}  direction TB"]
    for kind, n in sorted(_counts(component).items()):
        lines.append(f'{indent}  {cid}__{_id(kind)}["{_label(kind)} × {n}"]')
    for child in _ordered(component.children):
        if not child.custom:
            lines += _component_lines(child, indent + "  ")
    lines.append(f"{indent}end")
    return lines


def _where(rec: Recording) -> str:
    out = rec.outputs
    provider = out.get("provider")
    parts = [PROVIDER_TITLES.get(provider, str(provider)), out.get("region"), out.get("country")]
    return " · ".join(str(p) for p in parts if p)


def _registry(rec: Recording) -> Optional[str]:
    for res in rec.resources:
        if res.type.endswith(":ClusterTrainingRuntime"):
            found = re.search(r"'image': '([^'/]+)/", str(res.inputs))
            if found:
                return found.group(1)
    return None


def to_mermaid(rec: Recording) -> str:
    at_top = [r for r in rec.resources if r.parent is not None and r.parent.split("::")[2] == "pulumi:pulumi:Stack"]
    roots = _ordered(r for r in at_top if not r.custom)
    infra = [r for r in roots if _kind(r) != "Platform"]
    platform = [r for r in roots if _kind(r) == "Platform"]
    loose = Counter(_kind(r) for r in at_top if r.custom and not r.type.startswith("pulumi:providers:"))
    lines = ["flowchart LR"]
    lines.append(f'  subgraph where["{_label(_where(rec))}"]')
    for comp in infra:
        lines += _component_lines(comp, "    ")
    for kind, n in sorted(loose.items()):
        lines.append(f'    stack__{_id(kind)}["{_label(kind)} × {n}"]')
    lines.append("  end")
    if platform:
        lines.append('  subgraph cluster["in the cluster (through the Kubernetes API)"]')
        for comp in platform:
            lines += _component_lines(comp, "    ")
        lines.append("  end")
    # the data paths
    lines.append('  deployer(["deployer: pulumi up"])')
    lines.append('  api{{"Kubernetes API"}}')
    lines.append("  deployer -- applies the platform --> api")
    if platform:
        lines.append("  api --> cluster")
    buckets = [r for r in rec.resources if r.type in BUCKETS]
    store = rec.outputs.get("object_store") if isinstance(rec.outputs.get("object_store"), dict) else None
    if buckets or store:
        names = ", ".join(sorted(str(b.inputs.get("name") or b.name) for b in buckets)) or ", ".join(sorted((store or {}).get("buckets", {})))
        region = (store or {}).get("region", "")
        lines.append(f'  store[("object storage {region}: {_label(names)}")]')
        lines.append("  cluster -- datasets, checkpoints --> store" if platform else "  where --> store")
    registry = _registry(rec)
    if registry and platform:
        lines.append(f'  registry[/"image registry {_label(registry)}"/]')
        lines.append("  registry -- workload images --> cluster")
    return "\n".join(lines) + "\n"
