"""The Markdown report written beside ``results.json``: what a reviewer reads before promotion."""

from __future__ import annotations


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1e5:
        return f"{value:.3e}"
    return f"{value:.{digits}f}"


def render(results: dict) -> str:
    model = results["model"]
    prov = model.get("provenance") or {}
    lines = [
        f"# Evaluation of `{model['path']}`",
        "",
        f"- suite: **{results['suite']['name']}** ({results['suite'].get('description') or 'no description'})",
        f"- backend: `{results['backend']}`; started {results['started']}; took {results['duration_s']} s",
        f"- model fingerprint: `{model['fingerprint'][:16]}…` over {len(model['files'])} files",
    ]
    if prov:
        lines.append(f"- trained by run `{prov.get('run')}` to step {prov.get('step')}")
    if results.get("limit"):
        lines.append(f"- **subset**: at most {results['limit']} items per task; not comparable with full runs")
    lines += ["", "| metric | value | ± stderr | items | shots | better |", "|---|---:|---:|---:|---:|---|"]
    for name, s in results["scores"].items():
        better = {True: "higher", False: "lower"}.get(s.get("higher_is_better"), "?")
        shots = "" if s.get("num_fewshot") is None else s["num_fewshot"]
        lines.append(f"| `{name}` | {_fmt(s['value'])} | {_fmt(s.get('stderr'))} | {s.get('n') or ''} "
                     f"| {shots} | {better} |")
    held = results.get("heldout")
    if held:
        lines += ["", "## Held-out perplexity", "",
                  f"{_fmt(held['perplexity'], 3)} (mean NLL {_fmt(held['nll_per_token'])} nats/token) over "
                  f"{held['tokens']} tokens in {held['sequences']} rows of {held['seq_len']} from `{held['dataset']}` "
                  f"(shards {', '.join(held['shards'])}; manifest sha256 `{held['dataset_manifest_sha256'][:16]}…`)."]
    env = results.get("environment") or {}
    lines += ["", "## Environment", "",
              ", ".join(f"{k} {v}" for k, v in env.items()) + f"; lm-eval {results['lm_eval'].get('lm_eval_version')}",
              ""]
    return "\n".join(lines)
