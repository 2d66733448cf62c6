"""The report's figures, drawn with matplotlib's Agg backend (no display), and the series each one
plots, read back from its lines so that ``series.json`` says what the PNG shows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node or in CI

import matplotlib.pyplot as plt  # noqa: E402

from .data import Run  # noqa: E402

DPI = 110


def _series(fig) -> dict:
    """Every labelled line of the figure, axis by axis: what was drawn, before it is saved."""
    axes = []
    for ax in fig.get_axes():
        lines = [{"label": line.get_label(), "x": [float(v) for v in line.get_xdata()],
                  "y": [float(v) for v in line.get_ydata()]}
                 for line in ax.get_lines() if not line.get_label().startswith("_")]
        axes.append({"x_label": ax.get_xlabel(), "y_label": ax.get_ylabel(), "y_scale": ax.get_yscale(), "lines": lines})
    return {"title": fig.axes[0].get_title(), "axes": axes}


def _save(fig, out: Path, name: str) -> dict:
    series = _series(fig)
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return series


def heldout_ceiling(verdict: Optional[dict]) -> Optional[float]:
    for check in (verdict or {}).get("checks", []):
        if check.get("rule") == "max_perplexity" and check.get("metric") == "heldout/perplexity":
            return check.get("limit")
    return None


def draw(run: Run, out: Path) -> dict[str, dict]:
    """Write the PNG figures into ``out``; returns ``{file name: its series}``."""
    steps = run.steps
    tokens = [r["tokens_seen"] for r in steps]
    made: dict[str, dict] = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(tokens, [r["loss"] for r in steps], label="training loss")
    held = (run.results or {}).get("heldout")
    if held:
        ax.plot([tokens[-1]], [held["nll_per_token"]], "o", label="held-out loss (mean NLL)")
    ax.set(title="Loss against tokens", xlabel="tokens seen", ylabel="loss (nats/token)")
    ax.legend()
    made["loss.png"] = _save(fig, out, "loss.png")

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(tokens, [r["lr"] for r in steps], label="learning rate")
    ax.set(title="Learning rate against tokens", xlabel="tokens seen", ylabel="learning rate")
    made["lr.png"] = _save(fig, out, "lr.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in steps], [r["tokens_per_s"] for r in steps], label="tokens/s (all devices)")
    ax.set(title="Throughput", xlabel="step", ylabel="tokens/s")
    mfu = [(r["step"], r["mfu"]) for r in steps if r.get("mfu") is not None]
    if mfu:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in mfu], [m * 100 for _, m in mfu], color="tab:orange", label="MFU (%)")
        ax2.set_ylabel("MFU (%)")
    ax.legend(loc="lower right")
    made["throughput.png"] = _save(fig, out, "throughput.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(tokens, [math.exp(min(r["loss"], 50.0)) for r in steps], label="training perplexity")
    if held:
        ax.plot([tokens[-1]], [held["perplexity"]], "o", label="held-out perplexity")
    ceiling = heldout_ceiling(run.verdict)
    if ceiling is not None:
        ax.plot([tokens[0], tokens[-1]], [ceiling, ceiling], "--", color="tab:red", label="gate: maximum held-out perplexity")
    ax.set(title="Perplexity against tokens", xlabel="tokens seen", ylabel="perplexity", yscale="log")
    ax.legend()
    made["perplexity.png"] = _save(fig, out, "perplexity.png")
    return made
