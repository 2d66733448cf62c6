"""Image references in chart values: read them (:func:`resolve`) and move them into a mirror.

A mirrored reference keeps the original host in its path, ``<registry>/<prefix>/<host>/<path>:<tag>``,
so that two upstream registries holding the same path never collide in the mirror (the collision
kube-prometheus-stack's ``global.imageRegistry`` has: prometheus-community/helm-charts#3501).
"""

from __future__ import annotations

from typing import Any, Optional

from . import table


def _copy(value: Any) -> Any:
    """A copy of the mappings and lists; the leaves (Pulumi outputs among them) are shared."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def get(values: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(values, dict) or key not in values:
            return None
        values = values[key]
    return values


def _set(values: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    if isinstance(value, dict) and isinstance(values.get(last), dict):
        values[last] = {**values[last], **value}
    else:
        values[last] = value


def resolve(node: table.ImageNode, app_version: str, override: Any = None) -> str:
    """The reference a chart renders for an image node, our override (the values at its path) on top."""
    if node.style == "string":
        return override if isinstance(override, str) and override else node.fields["value"]
    f = {**node.fields, **{k: v for k, v in (override or {}).items() if isinstance(v, str) and v}}
    if node.style == "nvidia":
        return f"{f['repository']}/{f['image']}:{f.get('version') or app_version}"
    tag = f.get("tag") or app_version
    if node.style == "registry":
        return f"{f['registry']}/{f['repository']}:{tag}"
    if node.style == "repo":
        return f"{f['repository']}:{tag}"
    if node.style == "certmgr":
        return f"{f.get('repository') or 'quay.io/jetstack/' + f['name']}:{tag}"
    raise ValueError(f"unknown image style {node.style!r}")


def mirror_prefix(registry: str, prefix: str) -> str:
    """``registry/prefix/``: what every mirrored reference starts with."""
    return "/".join(p for p in (registry, prefix.strip("/")) if p) + "/"


def mirror_ref(ref: str, registry: str, prefix: str) -> str:
    """``quay.io/jetstack/cert-manager-controller:v1.21.1`` -> ``<registry>/<prefix>/quay.io/jetstack/...``;
    a reference without a host (``alpine:3``) is Docker Hub's (``docker.io/library/alpine:3``)."""
    base = mirror_prefix(registry, prefix)
    if ref.startswith(base):
        return ref
    first = ref.split("/", 1)[0]
    if "/" not in ref or not ("." in first or ":" in first or first == "localhost"):
        ref = "docker.io/" + (ref if "/" in ref else "library/" + ref)
    return base + ref


def _fields(style: str, ref: str, registry: str) -> Any:
    """The values fields that make the chart render ``ref`` (already mirrored), in the node's style."""
    name, _, tag = ref.rpartition(":")
    if style == "string":
        return ref
    if style == "nvidia":
        repository, _, image = name.rpartition("/")
        return {"repository": repository, "image": image, "version": tag}
    if style == "registry":
        return {"registry": registry, "repository": name[len(registry) + 1:], "tag": tag}
    return {"repository": name, "tag": tag}  # repo, certmgr


def mirror_values(chart: str, version: str, values: dict, registry: str, prefix: str) -> dict:
    """The chart's values with every image the table knows set, explicitly, to its mirrored
    reference (our own overrides kept, then mirrored); a copy, the input is left alone."""
    entry = table.CHARTS.get(chart)
    out = _copy(values)
    if entry is None or entry.version != version:
        return out  # the inventory refuses this case by name; the policy rule flags what stays upstream
    nodes = [(n, n.path) for n in entry.nodes]
    if chart == "slurm":  # map entries the chart merges over its defaults may carry images of their own
        for group, defaults in (("nodesets", "nodesetDefaults"), ("loginsets", "loginsetDefaults")):
            for name in sorted(out.get(group) or {}):
                nodes += [(n, f"{group}.{name}.{n.path[len(defaults) + 1:]}")
                          for n in entry.nodes if n.path.startswith(defaults + ".")]
    for node, path in nodes:
        override = get(out, path)
        if path != node.path and override is None:
            continue
        if path != node.path:
            override = {**(get(out, node.path) or {}), **override}
        ref = mirror_ref(resolve(node, entry.app_version, override), registry, prefix)
        _set(out, path, _fields(node.style, ref, registry))
    return out


def image_refs(values: Any, path: str = "") -> list[tuple[str, str]]:
    """``(path, reference)`` of every image named in a values tree, in any of the charts' styles:
    an ``image`` string; a mapping with ``registry``+``repository``, ``repository``+``image``
    (NVIDIA's) or ``repository``; a string under an ``images`` mapping (csi-s3)."""
    found: list[tuple[str, str]] = []
    if isinstance(values, dict):
        reg, repo, img = (values.get(k) for k in ("registry", "repository", "image"))
        if isinstance(repo, str) and repo and isinstance(reg, str) and reg:
            found.append((path, f"{reg}/{repo}"))
        elif isinstance(repo, str) and repo and isinstance(img, str) and img:
            found.append((path, f"{repo}/{img}"))
        elif isinstance(repo, str) and repo and "/" in repo and path.rsplit(".", 1)[-1] in {"image", "images"} | _IMAGE_KEYS:
            found.append((path, repo))
        for k, v in values.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, str) and (k == "image" or path.rsplit(".", 1)[-1] == "images") and v and "/" in v:
                found.append((p, v))
            elif not isinstance(v, str):
                found.extend(image_refs(v, p))
    elif isinstance(values, list):
        for i, v in enumerate(values):
            found.extend(image_refs(v, f"{path}[{i}]"))
    return found


_IMAGE_KEYS = frozenset({"cacheImage", "thanosImage", "busybox", "kubectl"})


def outside(refs: list[tuple[str, str]], registry: str, prefix: str) -> list[tuple[str, str]]:
    base = mirror_prefix(registry, prefix)
    return [(p, r) for p, r in refs if not r.startswith(base)]


def chart_source(chart_repository: Optional[str], key: str) -> Optional[str]:
    """The chart's reference in the OCI chart mirror (``oci://host/path/<chart>``), or None."""
    return f"{chart_repository.rstrip('/')}/{key}" if chart_repository else None
