"""The decision: thresholds x evaluation results x baseline -> ``promotion.json``."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..eval import RESULTS_DIR, RESULTS_FILE, modelfiles
from . import PROMOTION_FILE, SCHEMA
from .registry import Registry
from .thresholds import Thresholds


def _check(rule: str, metric: Optional[str], passed: bool, detail: str, **numbers) -> dict:
    return {"rule": rule, "metric": metric, "passed": passed, "detail": detail, **numbers}


def _value(scores: dict, name: str) -> Optional[float]:
    entry = scores.get(name)
    return None if entry is None else entry.get("value")


def checks(results: dict, files: dict, th: Thresholds, baseline: Optional[dict]) -> list[dict]:
    out = []
    recorded = results["model"]["files"]
    diff = modelfiles.differences(recorded, files)
    out.append(_check("evidence", None, not diff,
                      "the results are about these files" if not diff else
                      "the results were computed on other files; evaluate again: " + "; ".join(diff)))
    suite = results["suite"]["name"]
    if th.suite:
        out.append(_check("suite", None, suite == th.suite,
                          f"evaluated with suite {suite}"
                          + ("" if suite == th.suite else f", thresholds expect {th.suite}")))
    if results.get("limit"):
        out.append(_check("complete", None, th.allow_subset,
                          f"evaluated on at most {results['limit']} items per task (--limit)"
                          + ("" if th.allow_subset else ": a subset cannot promote")))
    scores = results["scores"]
    for name, floor in th.min_scores.items():
        v = _value(scores, name)
        ok = v is not None and v >= floor
        out.append(_check("min_score", name, ok, f"{name} = {v} (minimum {floor})" if v is not None
                          else f"{name} is not in the results (suite {suite})", value=v, limit=floor))
    for name, ceiling in th.max_perplexity.items():
        v = _value(scores, name)
        ok = v is not None and v <= ceiling
        out.append(_check("max_perplexity", name, ok, f"{name} = {v} (maximum {ceiling})" if v is not None
                          else f"{name} is not in the results (suite {suite}; held-out needs --heldout)",
                          value=v, limit=ceiling))
    for name, reg in th.max_regression.items():
        v = _value(scores, name)
        if v is None:
            out.append(_check("max_regression", name, False, f"{name} is not in the results", value=None))
            continue
        base = (baseline or {}).get("scores", {}).get(name)
        if base is None:
            why = "no promoted baseline yet" if baseline is None else f"the baseline has no {name}"
            out.append(_check("max_regression", name, True, f"{name} = {v}; {why}", value=v, baseline=None))
            continue
        higher = (scores[name].get("higher_is_better") is not False)
        worse = (base - v) if higher else (v - base)
        allowed = reg.amount * abs(base) if reg.relative else reg.amount
        out.append(_check("max_regression", name, worse <= allowed,
                          f"{name} = {v} vs {base} promoted ({'lower' if higher else 'higher'} by "
                          f"{max(worse, 0):.4g}; allowed {reg.describe()})", value=v, baseline=base,
                          limit=allowed))
    return out


def decide(model_dir: str | Path, th: Thresholds, source: dict, registry: Optional[Registry] = None) -> dict:
    """Write ``promotion.json`` (both verdicts) and, when promoted, record it in ``registry``."""
    model_dir = modelfiles.check_hf_dir(model_dir)
    results_path = model_dir / RESULTS_DIR / RESULTS_FILE
    if not results_path.is_file():
        raise UserError(f"{model_dir} has no {RESULTS_DIR}/{RESULTS_FILE}: evaluate it first "
                        f"(python -m workloads.eval {model_dir} --heldout DATASET)")
    raw = results_path.read_bytes()
    results = json.loads(raw)
    files = modelfiles.model_files(model_dir)
    fingerprint = modelfiles.fingerprint(files)
    baseline = registry.baseline(fingerprint) if registry else None
    found = checks(results, files, th, baseline)
    promoted = all(c["passed"] for c in found)
    verdict = {
        "schema": SCHEMA,
        "verdict": "promoted" if promoted else "rejected",
        "promoted": promoted,  # what the llm-serve chart's init step reads
        "reasons": [c["detail"] for c in found if not c["passed"]],
        "decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"path": str(model_dir.resolve()), "fingerprint": fingerprint, "files": files},
        "results": {"path": f"{RESULTS_DIR}/{RESULTS_FILE}", "sha256": hashlib.sha256(raw).hexdigest(),
                    "suite": results["suite"]["name"], "started": results.get("started")},
        "thresholds": source,
        "registry": registry.location if registry else None,
        "baseline": None if baseline is None else {k: baseline[k] for k in ("fingerprint", "model", "decided_at")},
        "checks": found,
    }
    path = model_dir / PROMOTION_FILE
    tmp = path.with_name(PROMOTION_FILE + ".part")
    tmp.write_text(json.dumps(verdict, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    if promoted and registry:
        registry.record({"fingerprint": fingerprint, "model": str(model_dir.resolve()),
                         "decided_at": verdict["decided_at"], "suite": results["suite"]["name"],
                         "scores": {k: v["value"] for k, v in results["scores"].items()}})
    return verdict


def rejection(verdict: dict) -> list[str]:
    """Why a verdict does not promote (empty: it does): the gate's own reasons, or that it says no."""
    if verdict.get("verdict") == "promoted":
        return []
    return [f"rejected by the gate on {verdict.get('decided_at')}: {r}" for r in verdict.get("reasons", [])] or [
        f"the verdict is {verdict.get('verdict')!r}, not 'promoted'"]


def status(model_dir: str | Path) -> tuple[bool, list[str], Optional[dict]]:
    """(promoted and still the same files?, why not, the verdict): what serving asks before start."""
    model_dir = Path(model_dir)
    path = model_dir / PROMOTION_FILE
    if not path.is_file():
        return False, [f"{model_dir} was never through the gate (no {PROMOTION_FILE}); run "
                       f"`python -m workloads.eval` then `python -m workloads.gate decide` on it"], None
    verdict = json.loads(path.read_text(encoding="utf-8"))
    reasons = rejection(verdict)
    diff = modelfiles.differences(verdict["model"]["files"], modelfiles.model_files(model_dir))
    if diff:
        reasons.append("the files differ from those the gate judged: " + "; ".join(diff))
    return not reasons, reasons, verdict
