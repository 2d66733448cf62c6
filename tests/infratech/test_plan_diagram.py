"""The plan's Mermaid picture, parsed back into a graph: the same components, nested as in the
plan, every resource counted under its component, the data paths connected; the cost bars."""

from __future__ import annotations

import re

import pytest

from infratech.cli.plan import record, report
from infratech.cli.plan.diagram import to_mermaid

NODE = re.compile(r'^\s*(\w+)(\["|\[\("|\{\{"|\(\["|\[/")(.*?)("\]|"\)\]|"\}\}|"\]\)|"/\])\s*$')
SUBGRAPH = re.compile(r'^\s*subgraph (\w+)\["(.*)"\]\s*$')
EDGE = re.compile(r"^\s*(\w+) (?:-- (.*?) )?--> (\w+)\s*$")


def parse(text: str) -> dict:
    """nodes (id -> label), subgraphs (id -> (label, parent subgraph)), edges, node parents."""
    lines = text.strip().splitlines()
    assert lines[0] == "flowchart LR"
    nodes, subgraphs, edges, parent_of, stack = {}, {}, [], {}, []
    for line in lines[1:]:
        if m := SUBGRAPH.match(line):
            subgraphs[m[1]] = (m[2], stack[-1] if stack else None)
            stack.append(m[1])
        elif line.strip() == "end":
            stack.pop()
        elif line.strip() == "direction TB":
            continue
        elif m := EDGE.match(line):
            edges.append((m[1], m[2], m[3]))
        elif m := NODE.match(line):
            nodes[m[1]] = m[3]
            parent_of[m[1]] = stack[-1] if stack else None
        else:
            pytest.fail(f"a line the parser does not know: {line!r}")
    assert not stack, "every subgraph is closed"
    return {"nodes": nodes, "subgraphs": subgraphs, "edges": edges, "parent_of": parent_of}


@pytest.fixture(scope="module")
def plans(project):
    return {s: record(project, s) for s in project.stacks()}


def test_every_resource_is_counted_under_its_component(plans):
    for name, rec in plans.items():
        graph = parse(to_mermaid(rec))
        counted = sum(int(label.rsplit("× ", 1)[1]) for label in graph["nodes"].values() if "× " in label)
        custom = [r for r in rec.resources if r.custom and not r.type.startswith("pulumi:providers:")]
        assert counted == len(custom), name
        components = {f"{r.type.rsplit(':', 1)[-1]} {r.name}": r for r in rec.resources if not r.custom}
        labels = {label: parent for label, parent in graph["subgraphs"].values()}
        assert set(components) <= set(labels), f"{name}: components missing from the picture"
        by_id = {sid: label for sid, (label, _) in graph["subgraphs"].items()}
        for label, comp in components.items():
            parent = next((r for r in rec.resources if r.urn == comp.parent), None)  # None: the stack itself
            if parent is not None and not parent.custom:
                assert by_id[labels[label]] == f"{parent.type.rsplit(':', 1)[-1]} {parent.name}", f"{name}: {label} nested wrongly"


def test_where_it_runs_and_the_data_paths(plans):
    graph = parse(to_mermaid(plans["ovh-gra11"]))
    assert graph["subgraphs"]["where"][0] == "OVHcloud · GRA11 · FR"
    assert "llm-gra11-datasets" in graph["nodes"]["store"] and "llm-gra11-checkpoints" in graph["nodes"]["store"]
    ids = set(graph["nodes"]) | set(graph["subgraphs"])
    assert all(a in ids and b in ids for a, _, b in graph["edges"]), "edges join what exists"
    assert ("deployer", "applies the platform", "api") in graph["edges"]
    assert ("cluster", "datasets, checkpoints", "store") in graph["edges"]
    assert graph["nodes"]["registry"].startswith("image registry ghcr.io")
    scw = parse(to_mermaid(plans["scaleway-fr-par-2-h100"]))
    assert scw["subgraphs"]["where"][0] == "Scaleway · fr-par · FR"


def test_the_markdown_plan_opens_with_the_picture_and_bars_the_costs(plans):
    text = report.to_markdown(plans["ovh-gra11"])
    assert text.index("```mermaid\nflowchart LR") < text.index("| resource | name |")
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| h100 ") or line.startswith("| l40s ")}
    h100_bar = rows["h100"].rstrip(" |").rsplit("| ", 1)[1]
    l40s_bar = rows["l40s"].rstrip(" |").rsplit("| ", 1)[1]
    assert h100_bar == "▓" * 12 + "░" * 12, "0 at min, 4,088 at desired, 8,176 (the largest) at max"
    assert l40s_bar == "█" * 3 + "░" * 6, "1,022 at min and desired, 3,066 at max: 24 x 3,066 / 8,176 = 9 cells"
    assert rows and "unknown" in next(line for line in text.splitlines() if line.startswith("| system "))
