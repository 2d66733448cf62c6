"""``python -m workloads.report RUN_DIR [--model MODEL_DIR] [--out DIR]``: the run report.

CPU, after ``make pipeline``::

    python -m workloads.report build/pipeline/run --model build/pipeline/models/debug_tiny-step-000000040
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from . import MODEL_CARD, REPORT_DIR, REPORT_FILE, SERIES_FILE, data


def write(run_dir: Path, model_dir: Path | None = None, out: Path | None = None) -> Path:
    """Write the report (and, with a model, its card); returns the report's path."""
    from . import figures, render  # matplotlib is loaded only when a report is drawn

    run = data.load(run_dir, model_dir)
    out = out or (model_dir or run_dir) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    drawn = figures.draw(run, out)
    (out / SERIES_FILE).write_text(json.dumps(drawn, indent=1) + "\n", encoding="utf-8")
    path = out / REPORT_FILE
    path.write_text(render.report(run, drawn), encoding="utf-8")
    if model_dir is not None:
        (model_dir / MODEL_CARD).write_text(render.model_card(run, model_dir), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workloads.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the training run (its metrics.jsonl)")
    ap.add_argument("--model", type=Path, help="the exported model, evaluated (evaluation/results.json)")
    ap.add_argument("--out", type=Path, help="where the report goes (default: MODEL/report, else RUN_DIR/report)")
    args = ap.parse_args(argv)
    try:
        path = write(args.run_dir, args.model, args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
