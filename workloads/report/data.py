"""What the report reads: the trainer's metric lines, the evaluation results and the gate's verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..eval import RESULTS_DIR, RESULTS_FILE
from ..gate import PROMOTION_FILE

NEEDED = ("step", "loss", "lr", "tokens_per_s", "tokens_seen")


@dataclass(frozen=True)
class Run:
    run_dir: Path
    config: dict
    steps: list[dict]  # one metric record per step, in step order
    results: Optional[dict] = None  # evaluation/results.json of the model
    verdict: Optional[dict] = None  # promotion.json of the model


def metric_records(path: Path) -> list[dict]:
    """One record per step: a relaunch after a crash logs again the steps after its checkpoint, and
    the later line is the run that continued."""
    if not path.is_file():
        raise UserError(f"{path}: no such file (a run directory of `python -m workloads.train` has metrics.jsonl)")
    by_step: dict[int, dict] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{n}: not a JSON line") from None
        missing = [k for k in NEEDED if k not in record]
        if missing:
            raise UserError(f"{path}:{n}: no {', '.join(missing)} (allowed: the trainer's metric lines, "
                            f"with {', '.join(NEEDED)})")
        by_step[int(record["step"])] = record
    if not by_step:
        raise UserError(f"{path}: no metric line yet")
    return [by_step[s] for s in sorted(by_step)]


def _json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load(run_dir: Path, model_dir: Optional[Path] = None) -> Run:
    if not run_dir.is_dir():
        raise UserError(f"RUN_DIR {run_dir}: no such directory")
    results = verdict = None
    if model_dir is not None:
        if not model_dir.is_dir():
            raise UserError(f"--model {model_dir}: no such directory")
        results = _json(model_dir / RESULTS_DIR / RESULTS_FILE)
        if results is None:
            raise UserError(f"--model {model_dir}: no {RESULTS_DIR}/{RESULTS_FILE}; evaluate it first "
                            f"(python -m workloads.eval {model_dir} --heldout DATASET --gate THRESHOLDS)")
        verdict = _json(model_dir / PROMOTION_FILE)
    return Run(run_dir, _json(run_dir / "config.json") or {}, metric_records(run_dir / "metrics.jsonl"), results, verdict)
