"""The offline plan: the Pulumi program run under mocks, recorded and reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import Optional

from ... import policy
from ..stacks import Project, stack_config
from . import report
from .runtime import Recording, record


@dataclass(frozen=True)
class PlanFiles:
    json: Path
    markdown: Path


def write(rec: Recording, out_dir: Path, verdicts: Optional[list] = None) -> PlanFiles:
    """Write ``<stack>.json`` and ``<stack>.md`` under ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = PlanFiles(json=out_dir / f"{rec.stack}.json", markdown=out_dir / f"{rec.stack}.md")
    files.json.write_text(report.dumps_json(rec, verdicts), encoding="utf-8")
    files.markdown.write_text(report.to_markdown(rec, verdicts), encoding="utf-8")
    return files


def policy_verdicts(project: Project, rec: Recording) -> list:
    """The policy rules evaluated on what the program declared, with the stack's policy settings."""
    cfg = stack_config(project, rec.stack)
    stack = policy.Stack(policy.resources_from_recording(rec.resources), rec.outputs, cfg.policy_settings())
    return policy.evaluate(stack)


def plan(project: Project, stack: str, out_dir: Path) -> tuple[Recording, list, PlanFiles]:
    rec = record(project, stack)
    verdicts = policy_verdicts(project, rec)
    return rec, verdicts, write(rec, out_dir, verdicts)


__all__ = ["PlanFiles", "Recording", "plan", "policy_verdicts", "record", "report", "write"]
