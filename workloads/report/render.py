"""The report's Markdown and the model card that links it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

from ..eval import REPORT_FILE as EVAL_REPORT, RESULTS_DIR
from ..progress import duration
from . import REPORT_DIR, REPORT_FILE
from .data import Run

FIGURES = (("loss.png", "Loss against tokens"), ("lr.png", "Learning rate against tokens"),
           ("throughput.png", "Throughput"), ("perplexity.png", "Perplexity against tokens"))
RULE_WORDS = {"min_score": "≥ {limit:g}", "max_perplexity": "≤ {limit:g}", "max_regression": "loses ≤ {limit:.4g} vs {baseline:.4g}"}


def _num(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3e}" if abs(value) >= 1e5 else f"{value:.4f}"


def _training(run: Run) -> list[str]:
    first, last = run.steps[0], run.steps[-1]
    cfg = run.config
    name = (cfg.get("run") or {}).get("name", run.run_dir.name)
    total = (cfg.get("train") or {}).get("steps")
    seconds, before = 0.0, 0  # step_time_s is the mean over the steps since the previous line
    for r in run.steps:
        seconds += r.get("step_time_s", 0) * (r["step"] - before)
        before = r["step"]
    mfu = [r["mfu"] for r in run.steps if r.get("mfu") is not None]
    lines = [f"- run **{name}** (`{run.run_dir}`): step {last['step']}" + (f" of {total}" if total else "")
             + f", {last['tokens_seen']:,} tokens seen",
             f"- loss {first['loss']:.4f} at step {first['step']} → {last['loss']:.4f} at step {last['step']} "
             f"(perplexity {math.exp(min(last['loss'], 50)):.2f})",
             f"- throughput: median {sorted(r['tokens_per_s'] for r in run.steps)[len(run.steps) // 2]:,.0f} tokens/s; "
             + (f"MFU median {sorted(mfu)[len(mfu) // 2] * 100:.1f}%" if mfu else "MFU not reported (no known peak: CPU)"),
             f"- time in training steps: about {duration(seconds)}"]
    return lines


def _threshold(check: dict) -> str:
    if check.get("limit") is None:
        return "regression: no promoted baseline yet" if check["rule"] == "max_regression" else check.get("detail", "")
    words = RULE_WORDS.get(check["rule"], "{limit}")
    try:
        return words.format(limit=check["limit"], baseline=check.get("baseline") or 0.0)
    except (TypeError, ValueError):
        return str(check["limit"])


def _evaluation(results: dict, verdict: Optional[dict]) -> list[str]:
    by_metric: dict[str, list[dict]] = {}
    for check in (verdict or {}).get("checks", []):
        if check.get("metric"):
            by_metric.setdefault(check["metric"], []).append(check)
    lines = ["| metric | value | ± stderr | items | better | gate threshold | passes |", "|---|---:|---:|---:|---|---|---|"]
    for name, s in results["scores"].items():
        checks = by_metric.get(name, [])
        better = {True: "higher", False: "lower"}.get(s.get("higher_is_better"), "?")
        gate = "; ".join(_threshold(c) for c in checks) or ("none" if verdict else "not gated")
        passes = ("yes" if all(c["passed"] for c in checks) else "**no**") if checks else ""
        lines.append(f"| `{name}` | {_num(s['value'])} | {_num(s.get('stderr'))} | {s.get('n') or ''} | {better} "
                     f"| {gate} | {passes} |")
    if verdict:
        lines += ["", f"Gate verdict: **{verdict['verdict']}** (thresholds `{verdict['thresholds'].get('path')}`, "
                      f"decided {verdict['decided_at']})."]
        lines += [f"- {c['rule']}: {c['detail']}" for c in verdict["checks"] if not c.get("metric")]
        lines += [f"- not passed: {r}" for r in verdict.get("reasons", [])]
    else:
        lines += ["", "Not through the gate yet (no promotion.json): `python -m workloads.gate decide`."]
    held = results.get("heldout")
    if held:
        lines += ["", f"Held-out perplexity {held['perplexity']:.3f} (mean NLL {held['nll_per_token']:.4f} nats/token) "
                      f"over {held['tokens']:,} tokens of `{held['dataset']}`."]
    return lines


def report(run: Run, figures: dict[str, dict]) -> str:
    lines = ["# Run report", "", "## Training", "", *_training(run), ""]
    for name, title in FIGURES:
        if name in figures:
            lines += [f"![{title}]({name})", ""]
    lines.append("The plotted series of each figure are in `series.json`; the metric lines in "
                 f"`{run.run_dir / 'metrics.jsonl'}`.")
    if run.results:
        lines += ["", "## Evaluation", "", f"Suite **{run.results['suite']['name']}**, backend `{run.results['backend']}`, "
                  f"model fingerprint `{run.results['model']['fingerprint'][:16]}…`.", "",
                  *_evaluation(run.results, run.verdict)]
    return "\n".join(lines) + "\n"


def model_card(run: Run, model_dir: Path, metadata: Optional[dict] = None, sections: Sequence[str] = (),
               title: Optional[str] = None) -> str:
    """A Hugging Face model card (README.md with its YAML header) that links the report.

    ``metadata`` adds to the YAML header (the registry's licence, languages, datasets, base model and
    ``model-index``, workloads.registry.cards); ``sections`` are Markdown lines appended after it."""
    import yaml

    results = run.results or {}
    name = (run.config.get("run") or {}).get("name", run.run_dir.name)
    last = run.steps[-1]
    header = {"library_name": "transformers", "pipeline_tag": "text-generation", "tags": ["llama", "infratech"],
              **(metadata or {})}
    lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip("\n"), "---", "",
             f"# {title or model_dir.name}", "",
             f"A Llama-architecture model trained by run `{name}` to step {last['step']} "
             f"({last['tokens_seen']:,} tokens), final training loss {last['loss']:.4f}.", ""]
    if results:
        held = results.get("heldout")
        lines.append(f"- evaluation suite **{results['suite']['name']}**"
                     + (f"; held-out perplexity {held['perplexity']:.3f}" if held else ""))
    if run.verdict:
        lines.append(f"- promotion gate: **{run.verdict['verdict']}** ({run.verdict['decided_at']})")
    lines += ["", f"Training and evaluation report, with its curves: [{REPORT_DIR}/{REPORT_FILE}]({REPORT_DIR}/{REPORT_FILE})."]
    if (model_dir / RESULTS_DIR / EVAL_REPORT).is_file():
        lines.append(f"Evaluation evidence: [{RESULTS_DIR}/{EVAL_REPORT}]({RESULTS_DIR}/{EVAL_REPORT}).")
    lines += [*sections, ""]
    return "\n".join(lines)
