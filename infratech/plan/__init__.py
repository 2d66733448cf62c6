"""The offline plan: the Pulumi program run under mocks, recorded and reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..stacks import Project
from . import report
from .runtime import Recording, record


@dataclass(frozen=True)
class PlanFiles:
    json: Path
    markdown: Path


def write(rec: Recording, out_dir: Path) -> PlanFiles:
    """Write ``<stack>.json`` and ``<stack>.md`` under ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = PlanFiles(json=out_dir / f"{rec.stack}.json", markdown=out_dir / f"{rec.stack}.md")
    files.json.write_text(report.dumps_json(rec), encoding="utf-8")
    files.markdown.write_text(report.to_markdown(rec), encoding="utf-8")
    return files


def plan(project: Project, stack: str, out_dir: Path) -> tuple[Recording, PlanFiles]:
    rec = record(project, stack)
    return rec, write(rec, out_dir)


__all__ = ["PlanFiles", "Recording", "plan", "record", "report", "write"]
