"""The offline plan as a tree (terminal), JSON and Markdown, from a :class:`Recording`.

Everything shown comes from the recorded resource registrations; nothing here knows what a
stack "should" contain.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .runtime import COMPUTED, Recording, Resource

FORMAT_VERSION = 1

# Input properties worth a glance in the tree, by wire name, whatever the resource type.
KEY_PROPERTIES = (
    "name",
    "region",
    "regions",
    "flavorName",
    "version",
    "plan",
    "updatePolicy",
    "model",
    "cidr",
    "ips",
    "versioning.status",
    "encryption.algorithm",
    "roleNames",
    "chart",
    "namespace",
)


def _get(inputs: dict, dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def key_properties(res: Resource) -> dict[str, Any]:
    props = {}
    for key in KEY_PROPERTIES:
        value = _get(res.inputs, key)
        if value is not None:
            props[key] = value
    if "flavorName" in res.inputs:  # a node pool: its sizes read best together
        sizes = [res.inputs.get(k, COMPUTED) for k in ("minNodes", "desiredNodes", "maxNodes")]
        props["nodes(min/desired/max)"] = "/".join(str(s) for s in sizes)
        if res.inputs.get("autoscale"):
            props["autoscale"] = True
        taints = _get(res.inputs, "template.spec.taints") or []
        if taints:
            props["taints"] = [f"{t.get('key')}={t.get('value')}:{t.get('effect')}" for t in taints]
    if res.secret_outputs:
        props["secret outputs"] = res.secret_outputs
    if res.protect:
        props["protected"] = True
    return props


def _short(urn: str | None) -> str | None:
    return None if urn is None else urn.rsplit("::", 1)[-1]


def walk(rec: Recording) -> Iterator[tuple[int, Resource]]:
    """Resources depth-first in a stable order: roots and siblings sorted by (type, name)."""
    known = {r.urn for r in rec.resources}

    def order(resources):
        return sorted(resources, key=lambda r: (r.custom, r.type, r.name))

    def visit(res: Resource, depth: int):
        yield depth, res
        for child in order(res.children):
            yield from visit(child, depth + 1)

    for root in order(r for r in rec.resources if r.parent not in known):
        yield from visit(root, 0)


def to_json(rec: Recording) -> dict:
    resources = []
    for _, res in walk(rec):
        resources.append(
            {
                "type": res.type,
                "name": res.name,
                "urn": res.urn,
                "parent": res.parent,
                "custom": res.custom,
                "provider": (res.provider or f"default {res.package}") if res.custom else None,
                "protect": res.protect,
                "dependencies": res.dependencies,
                "secret_outputs": res.secret_outputs,
                "inputs": res.inputs,
            }
        )
    by_type: dict[str, int] = {}
    for res in rec.resources:
        by_type[res.type] = by_type.get(res.type, 0) + 1
    return {
        "format": FORMAT_VERSION,
        "project": rec.project,
        "stack": rec.stack,
        "summary": {
            "resources": len(rec.resources),
            "custom_resources": sum(r.custom for r in rec.resources),
            "by_type": dict(sorted(by_type.items())),
        },
        "resources": resources,
        "outputs": rec.outputs,
    }


def dumps_json(rec: Recording) -> str:
    return json.dumps(to_json(rec), indent=2, sort_keys=True, default=str) + "\n"


def _same_name(res: Resource, key: str, value: Any) -> bool:
    return key == "name" and value == res.name


def _type_label(res: Resource) -> str:
    return res.type.rsplit(":", 1)[-1] if res.custom else res.type


def to_text(rec: Recording) -> str:
    n = len(rec.resources)
    lines = [f"Plan for stack {rec.stack!r} (project {rec.project}): {n} resources, nothing created", ""]
    for depth, res in walk(rec):
        indent = "  " * depth + ("- " if depth else "")
        props = "  ".join(f"{k}={_fmt(v)}" for k, v in key_properties(res).items() if not _same_name(res, k, v))
        lines.append(f"{indent}{_type_label(res)} {res.name}" + (f"  {props}" if props else ""))
    lines += ["", "Outputs:"]
    for key, value in sorted(rec.outputs.items()):
        text = json.dumps(value, sort_keys=True, default=str)
        lines.append(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
    lines.append("")
    lines.append(f"{COMPUTED} = known only after creation; [secret] = a Pulumi secret, never shown")
    return "\n".join(lines) + "\n"


def to_markdown(rec: Recording) -> str:
    out = [
        f"# Plan: stack `{rec.stack}`",
        "",
        f"Project `{rec.project}`, {len(rec.resources)} resources, produced offline by running the "
        "Pulumi program under the SDK's mock runtime. Nothing was created.",
        "",
        "| resource | name | parent | key properties |",
        "|---|---|---|---|",
    ]
    for _, res in walk(rec):
        props = "<br>".join(f"{k}: `{_fmt(v)}`" for k, v in key_properties(res).items() if not _same_name(res, k, v))
        out.append(f"| `{_type_label(res)}` | `{res.name}` | {_short(res.parent) or ''} | {props} |")
    out += ["", "## Outputs", "", "```json", json.dumps(rec.outputs, indent=2, sort_keys=True, default=str), "```", ""]
    out.append(f"`{COMPUTED}`: known only after creation. `[secret]`: a Pulumi secret, never written here.")
    return "\n".join(out) + "\n"
