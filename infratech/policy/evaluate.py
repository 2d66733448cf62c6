"""Evaluating the rules on a stack, and the verdict table the offline plan prints."""

from __future__ import annotations

from typing import Any, Iterable

from .model import Resource, Stack, Verdict
from .rules import RULES


def resources_from_recording(recorded: Iterable[Any]) -> tuple[Resource, ...]:
    """The plan's recorded resources as the rules see them (custom resources and providers), in a
    stable order: the SDK registers asynchronously, so the order of registration varies by run."""
    custom = sorted((r for r in recorded if r.custom), key=lambda r: (r.type, r.name))
    return tuple(Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, dependencies=tuple(r.dependencies))
                 for r in custom)


def evaluate(stack: Stack) -> list[Verdict]:
    settings = stack.settings
    verdicts = []
    for rule in RULES:
        level = settings.levels.get(rule.id, rule.default_level)
        if level == "disabled":
            verdicts.append(Verdict(rule, level, ()))
            continue
        if rule.active is not None and not rule.active(settings):
            verdicts.append(Verdict(rule, level, (), inactive=True))
            continue
        if rule.scope == "stack":
            violations = rule.check(stack)
        else:
            violations = [msg for res in stack.resources for msg in rule.check(res, settings)]
        verdicts.append(Verdict(rule, level, tuple(violations), settings.exceptions.get(rule.id)))
    return verdicts


def blocking(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.blocks]


def to_text(verdicts: list[Verdict]) -> str:
    lines = ["Policy verdicts (policies/sovereignty; docs/sovereignty.md):"]
    width = max(len(v.rule.id) for v in verdicts)
    for v in verdicts:
        count = f"{len(v.violations)} violation{'s' if len(v.violations) != 1 else ''}" if v.violations else ""
        lines.append(f"  {v.status:9} {v.rule.id:{width}}  {v.level:10} {count}".rstrip())
        if v.exception and v.violations:
            lines.append(f"            excepted by the stack: {v.exception}")
        for msg in v.violations[:20]:
            lines.append(f"            - {msg}")
        if len(v.violations) > 20:
            lines.append(f"            ... and {len(v.violations) - 20} more")
    failed = blocking(verdicts)
    lines.append(
        f"  {len(failed)} mandatory rule(s) violated: the plan fails" if failed else "  no mandatory rule violated"
    )
    return "\n".join(lines) + "\n"


def to_json(verdicts: list[Verdict]) -> list[dict]:
    return [
        {
            "rule": v.rule.id,
            "level": v.level,
            "status": v.status,
            "violations": list(v.violations),
            "exception": v.exception,
            "description": v.rule.description,
            "remediation": v.rule.remediation,
            "source": v.rule.source,
        }
        for v in verdicts
    ]


def to_markdown(verdicts: list[Verdict]) -> str:
    out = ["## Policy verdicts", "", "| rule | level | verdict | violations |", "|---|---|---|---|"]
    for v in verdicts:
        msgs = "<br>".join(v.violations[:10]) + ("<br>…" if len(v.violations) > 10 else "")
        if v.exception and v.violations:
            msgs = f"excepted: {v.exception}<br>" + msgs
        out.append(f"| `{v.rule.id}` | {v.level} | {v.status} | {msgs} |")
    return "\n".join(out) + "\n"
