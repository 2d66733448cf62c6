"""The offline plan as a tree (terminal), JSON and Markdown, from a :class:`Recording`.

Everything shown comes from the recorded resource registrations; nothing here knows what a
stack "should" contain.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

from ...costs import eur, eur_rate
from .diagram import to_mermaid
from .runtime import COMPUTED, Recording, Resource

FORMAT_VERSION = 3  # 2: top-level `costs`; 3: top-level `policy` (verdicts)

# Input properties worth a glance in the tree, by wire name, whatever the resource type.
KEY_PROPERTIES = (
    "name",
    "region",
    "regions",
    "flavorName",
    "nodeType",
    "zone",
    "type",
    "cni",
    "version",
    "plan",
    "updatePolicy",
    "model",
    "cidr",
    "ips",
    "versioning.status",
    "versioning.enabled",
    "encryption.algorithm",
    "ipv4Subnet.subnet",
    "roleNames",
    "chart",
    "repositoryOpts.repo",
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
    # a node pool (OVHcloud, Scaleway): its sizes read best together
    size_keys = ("minNodes", "desiredNodes", "maxNodes") if "flavorName" in res.inputs else ("minSize", "size", "maxSize")
    if "flavorName" in res.inputs or "nodeType" in res.inputs:
        sizes = [res.inputs.get(k, COMPUTED) for k in size_keys]
        props["nodes(min/desired/max)"] = "/".join(str(s) for s in sizes)
        if res.inputs.get("autoscale") or res.inputs.get("autoscaling"):
            props["autoscale"] = True
        taints = _get(res.inputs, "template.spec.taints") or res.inputs.get("taints") or []
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


def to_json(rec: Recording, verdicts: Optional[list] = None) -> dict:
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
    data = {
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
    costs = _costs(rec)
    if costs is not None:
        data["costs"] = costs
    if verdicts is not None:
        from ...policy import to_json as policy_json

        data["policy"] = policy_json(verdicts)
    return data


def dumps_json(rec: Recording, verdicts: Optional[list] = None) -> str:
    return json.dumps(to_json(rec, verdicts), indent=2, sort_keys=True, default=str) + "\n"


# -- costs: read from the program's `costs` output, so the report stays a function of the recording --

SCENARIOS = ("min", "desired", "max")


def _costs(rec: Recording) -> Optional[dict]:
    costs = rec.outputs.get("costs")
    return costs if isinstance(costs, dict) else None


def _money(value: Optional[float]) -> str:
    return "unknown" if value is None else eur(value)


def _total_cell(total: dict) -> str:
    return eur(total["eur_per_month"]) if total["complete"] else f"at least {eur(total['eur_per_month'])}"


def _cost_rows(costs: dict) -> list[list[str]]:
    """pool, flavor, nodes, EUR/h per node, price as of, EUR/month at min, desired, max."""
    rows = []
    for p in costs["pools"]:
        rate = p["eur_per_hour_per_node"]
        rows.append(
            [
                p["name"],
                p["flavor"],
                "/".join(str(p["nodes"][s]) for s in SCENARIOS),
                "unknown" if rate is None else eur_rate(rate),
                p["price_source"] if rate is None else f"{p['price_source']} {p['price_as_of'] or '(undated)'}",
                *(_money(p["eur_per_month"][s]) for s in SCENARIOS),
            ]
        )
    for item in costs.get("other", []):
        rows.append([item["name"].replace("_", " "), "", "", "", "", *([_money(item["eur_per_month"])] * 3)])
    totals = costs["totals"]
    rows.append(["total", "", "", "", "", *(_total_cell(totals[s]) for s in SCENARIOS)])
    return rows


def _unknown_line(costs: dict) -> Optional[str]:
    top = costs["totals"]["max"]
    names = [*top["unknown"], *(n.replace("_", " ") for n in top["unknown_other"])]
    if not names:
        return None
    return f"unknown (never counted as 0; the totals are lower bounds): {', '.join(names)}"


def _budget_line(costs: dict) -> str:
    budget = costs["budget"]
    return f"budget: {budget['state']}: {budget['message']}"


def _cost_header(costs: dict) -> str:
    return f"{costs['currency']}, {costs['basis']}, a month of {costs['hours_per_month']} h"


COST_COLUMNS = [
    "pool", "flavor", "nodes min/desired/max", "EUR/h per node", "price source, as of", "EUR/month at min", "at desired", "at max",
]


def _cost_text(costs: dict) -> list[str]:
    rows = [COST_COLUMNS, *_cost_rows(costs)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COST_COLUMNS))]
    right = {3, 5, 6, 7}
    lines = [f"Costs ({_cost_header(costs)}):"]
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    unknown = _unknown_line(costs)
    if unknown:
        lines.append(f"  {unknown}")
    lines.append(f"  not counted: {costs['not_counted']}")
    lines.append(f"  {_budget_line(costs)}")
    return lines


BAR_WIDTH = 24


def cost_bar(month: dict, largest: float) -> str:
    """A pool's EUR/month as a bar: ``█`` up to min nodes, ``▓`` up to desired, ``░`` up to max,
    scaled to the most expensive pool at max; ``unknown`` where the price is."""
    if month.get("max") is None or largest <= 0:
        return "unknown"
    cells = [round(BAR_WIDTH * month[s] / largest) for s in SCENARIOS]
    return "█" * cells[0] + "▓" * (cells[1] - cells[0]) + "░" * (cells[2] - cells[1]) or "·"


def _cost_markdown(costs: dict) -> list[str]:
    out = [
        "## Costs",
        "",
        f"{_cost_header(costs)}; known before anything is created.",
        "",
        "| " + " | ".join(COST_COLUMNS) + " | min █ desired ▓ max ░ |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    largest = max((p["eur_per_month"]["max"] or 0 for p in costs["pools"]), default=0)
    bars = [cost_bar(p["eur_per_month"], largest) for p in costs["pools"]]
    for i, row in enumerate(_cost_rows(costs)):
        out.append("| " + " | ".join(row) + f" | {bars[i] if i < len(bars) else ''} |")
    out.append("")
    unknown = _unknown_line(costs)
    if unknown:
        out.append(unknown[0].upper() + unknown[1:] + ".")
        out.append("")
    out += [f"Not counted: {costs['not_counted']}.", "", f"**Budget ({costs['budget']['state']}):** {costs['budget']['message']}.", ""]
    return out


def _same_name(res: Resource, key: str, value: Any) -> bool:
    return key == "name" and value == res.name


def _type_label(res: Resource) -> str:
    return res.type.rsplit(":", 1)[-1] if res.custom else res.type


def to_text(rec: Recording, verdicts: Optional[list] = None) -> str:
    n = len(rec.resources)
    lines = [f"Plan for stack {rec.stack!r} (project {rec.project}): {n} resources, nothing created", ""]
    for depth, res in walk(rec):
        indent = "  " * depth + ("- " if depth else "")
        props = "  ".join(f"{k}={_fmt(v)}" for k, v in key_properties(res).items() if not _same_name(res, k, v))
        lines.append(f"{indent}{_type_label(res)} {res.name}" + (f"  {props}" if props else ""))
    costs = _costs(rec)
    if costs is not None:
        lines += ["", *_cost_text(costs)]
    lines += ["", "Outputs:"]
    for key, value in sorted(rec.outputs.items()):
        text = json.dumps(value, sort_keys=True, default=str)
        if key == "costs" and costs is not None:
            text = "(see Costs above)"
        lines.append(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
    if verdicts is not None:
        from ...policy import to_text as policy_text

        lines += ["", policy_text(verdicts).rstrip("\n")]
    lines.append("")
    lines.append(f"{COMPUTED} = known only after creation; [secret] = a Pulumi secret, never shown")
    return "\n".join(lines) + "\n"


def to_markdown(rec: Recording, verdicts: Optional[list] = None) -> str:
    out = [
        f"# Plan: stack `{rec.stack}`",
        "",
        f"Project `{rec.project}`, {len(rec.resources)} resources, produced offline by running the "
        "Pulumi program under the SDK's mock runtime. Nothing was created.",
        "",
        "```mermaid",
        to_mermaid(rec).rstrip(),
        "```",
        "",
        "| resource | name | parent | key properties |",
        "|---|---|---|---|",
    ]
    for _, res in walk(rec):
        props = "<br>".join(f"{k}: `{_fmt(v)}`" for k, v in key_properties(res).items() if not _same_name(res, k, v))
        out.append(f"| `{_type_label(res)}` | `{res.name}` | {_short(res.parent) or ''} | {props} |")
    costs = _costs(rec)
    if costs is not None:
        out += ["", *_cost_markdown(costs)]
    else:
        out.append("")
    if verdicts is not None:
        from ...policy import to_markdown as policy_markdown

        out += [policy_markdown(verdicts)]
    out += ["## Outputs", "", "```json", json.dumps(rec.outputs, indent=2, sort_keys=True, default=str), "```", ""]
    out.append(f"`{COMPUTED}`: known only after creation. `[secret]`: a Pulumi secret, never written here.")
    return "\n".join(out) + "\n"
