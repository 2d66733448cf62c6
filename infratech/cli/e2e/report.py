"""The report of an e2e run: ``build/e2e/<stack>-<UTC time>.json`` (schema :data:`SCHEMA`, described
in docs/e2e.md) and the same in Markdown, to read and to send back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from .estimate import Estimate
from .model import NAMES, PHASES
from .runner import Run

VERSION = "infratech-e2e/1"
_STATUS = ["passed", "failed", "skipped", "not-checked"]
_NUM = {"type": ["number", "null"]}
_TEXT = {"type": ["string", "null"]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "infratech e2e report",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "stack", "started", "finished", "result", "options", "estimate", "phases", "cleanup"],
    "properties": {
        "schema": {"const": VERSION},
        "stack": {"type": "string"},
        "started": {"type": "string"},
        "finished": {"type": "string"},
        "result": {"enum": ["passed", "failed"]},
        "failed_phase": {"enum": [*NAMES, None]},
        "options": {"type": "object", "additionalProperties": False,
                    "required": ["keep", "teardown_on_failure", "timeouts_min"],
                    "properties": {"keep": {"type": "boolean"}, "teardown_on_failure": {"type": "boolean"},
                                   "timeouts_min": {"type": "object", "additionalProperties": {"type": "number"}}}},
        "estimate": {"type": ["object", "null"], "required": ["currency", "hours", "eur_known", "complete", "unknown"],
                     "properties": {"currency": {"const": "EUR"}, "hours": {"type": "number"},
                                    "eur_known": {"type": "number"}, "complete": {"type": "boolean"},
                                    "unknown": {"type": "array", "items": {"type": "string"}}}},
        "phases": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "status", "started", "seconds", "timeout_min", "checks", "not_checked", "error"],
            "properties": {
                "name": {"enum": list(NAMES)}, "status": {"enum": _STATUS}, "started": _TEXT, "seconds": _NUM,
                "timeout_min": _NUM, "error": _TEXT,
                "not_checked": {"type": "array", "items": {"type": "string"}},
                "checks": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["name", "ok", "evidence"],
                    "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"}, "evidence": {"type": "string"}}}},
            }}},
        "cleanup": _TEXT,
    },
}


def to_json(run: Run, estimate: Optional[Estimate]) -> dict[str, Any]:
    return {
        "schema": VERSION,
        "stack": run.stack,
        "started": run.started,
        "finished": run.finished,
        "result": "passed" if run.passed else "failed",
        "failed_phase": run.failed_phase,
        "options": {"keep": run.keep, "teardown_on_failure": run.teardown_on_failure, "timeouts_min": dict(run.timeouts)},
        "estimate": None if estimate is None else estimate.to_dict(),
        "phases": [o.to_dict() for o in run.outcomes],
        "cleanup": run.cleanup,
    }


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: dict[str, Any]) -> str:
    lines = [f"# e2e {doc['stack']}: {doc['result']}", "",
             f"Started {doc['started']}, finished {doc['finished']}."]
    if doc.get("failed_phase"):
        lines.append(f"Failed in phase **{doc['failed_phase']}**.")
    if doc["estimate"]:
        est = doc["estimate"]
        known = f"{est['eur_known']:,.2f} EUR"
        lines.append(f"Estimated cost: {'' if est['complete'] else 'at least '}{known} for {round(est['hours'] * 60)} min"
                     + ("" if est["complete"] else f" (prices unknown for: {', '.join(est['unknown'])})") + ".")
    if doc["cleanup"]:
        lines += ["", f"**Clean up:** {doc['cleanup']}"]
    lines += ["", "| phase | status | seconds | timeout (min) | error |", "|---|---|---|---|---|"]
    for p in doc["phases"]:
        lines.append(f"| {p['name']} | {p['status']} | {'' if p['seconds'] is None else p['seconds']} | "
                     f"{'' if p['timeout_min'] is None else p['timeout_min']} | {_cell(p['error'] or '')} |")
    for p in doc["phases"]:
        if not p["checks"] and not p["not_checked"]:
            continue
        lines += ["", f"## {p['name']}", ""]
        lines += [f"- {'ok' if c['ok'] else 'FAILED'}: {c['name']}: {_cell(c['evidence'])}" for c in p["checks"]]
        lines += [f"- not checked by this version: {n}" for n in p["not_checked"]]
    return "\n".join(lines) + "\n"


def write(run: Run, estimate: Optional[Estimate], out_dir: Path) -> tuple[Path, Path]:
    doc = to_json(run, estimate)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = run.started.replace("-", "").replace(":", "")
    base = out_dir / f"{run.stack}-{stamp}"
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(doc), encoding="utf-8")
    return json_path, md_path


def dry_run_text(stack: str, estimate: Estimate, timeouts: dict[str, float]) -> str:
    lines = [f"e2e {stack} (dry run: nothing is created)", ""]
    for i, spec in enumerate(PHASES, 1):
        limit = f", timeout {timeouts[spec.name]:g} min" if spec.name in timeouts else ""
        lines.append(f"{i}. {spec.name}: {spec.does} (usually {spec.usual_min:g} min{limit})")
        lines += [f"   - checks: {c}" for c in spec.checks]
        lines += [f"   - not checked by this version: {c}" for c in spec.not_checked]
    lines += ["", "Cost of the run (desired nodes x the usual duration of the phases that hold them):"]
    for p in estimate.pools:
        rate = "unknown" if p["eur_per_hour_per_node"] is None else f"{p['eur_per_hour_per_node']:g} EUR/h per node"
        cost = "unknown" if p["eur"] is None else f"{p['eur']:,.2f} EUR"
        lines.append(f"  pool {p['name']}: {p['nodes']} node(s) x {rate} x {estimate.minutes} min = {cost}")
    lines.append(f"  total: {estimate.words()}")
    lines.append(f"  not counted: {estimate.not_counted}")
    return "\n".join(lines) + "\n"
