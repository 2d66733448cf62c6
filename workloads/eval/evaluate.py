"""One evaluation: tasks + held-out perplexity -> ``evaluation/results.json`` and ``report.md``."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from . import REPORT_FILE, RESULTS_DIR, RESULTS_FILE, SCHEMA, harness, modelfiles
from .perplexity import heldout_perplexity
from .report import render
from .suites import Suite

PROVENANCE = "training_provenance.json"


def _environment(backend: str) -> dict:
    import torch
    import transformers

    env = {"python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "host": platform.node(),
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    if backend == "vllm":
        import vllm

        env["vllm"] = vllm.__version__
    return env


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def evaluate(model_dir: str | Path, suite: Suite, *, backend: Optional[str] = None, heldout: Optional[str] = None,
             heldout_shard: Optional[int] = None, limit: Optional[int] = None,
             log: Callable[[str], None] = print) -> dict:
    """Evaluate ``model_dir`` with ``suite``; write and return the results."""
    model_dir = modelfiles.check_hf_dir(model_dir)
    backend = backend or suite.backend
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    files = modelfiles.model_files(model_dir)
    provenance = model_dir / PROVENANCE
    results: dict = {
        "schema": SCHEMA,
        "model": {
            "path": str(model_dir.resolve()),
            "fingerprint": modelfiles.fingerprint(files),
            "files": files,
            "provenance": json.loads(provenance.read_text()) if provenance.is_file() else None,
        },
        "suite": suite.model_dump(mode="json"),
        "backend": backend,
        "limit": limit or suite.limit,
        "started": started.isoformat(timespec="seconds"),
    }
    scores: dict[str, dict] = {}
    if heldout:
        log(f"eval: held-out perplexity on {heldout}")
        device = suite.hf.device if backend == "hf" else "cuda"
        dtype = suite.hf.dtype if backend == "hf" and suite.hf.dtype != "auto" else \
            ("bfloat16" if device.startswith("cuda") else "float32")
        ppl = heldout_perplexity(model_dir, heldout, max_sequences=suite.perplexity.max_sequences,
                                 batch_size=suite.perplexity.batch_size, shard=heldout_shard, device=device,
                                 dtype=dtype)
        results["heldout"] = ppl
        scores["heldout/perplexity"] = {"value": ppl["perplexity"], "stderr": None, "higher_is_better": False,
                                        "n": ppl["sequences"], "num_fewshot": None}
        log(f"eval: held-out perplexity {ppl['perplexity']:.3f} over {ppl['tokens']} tokens")
    log(f"eval: lm-evaluation-harness, backend {backend}, tasks "
        + ", ".join(f"{t.name}({t.num_fewshot if t.num_fewshot is not None else 'default'}-shot)" for t in suite.tasks))
    raw = harness.run(model_dir, suite, backend, limit=limit)
    scores.update(harness.scores(raw))
    results["scores"] = dict(sorted(scores.items()))
    results["lm_eval"] = {k: raw.get(k) for k in ("lm_eval_version", "model_args", "n-samples", "n-shot", "versions")}
    results["duration_s"] = round(time.monotonic() - t0, 2)
    results["environment"] = _environment(backend)

    out = model_dir / RESULTS_DIR
    out.mkdir(exist_ok=True)
    _write_atomic(out / RESULTS_FILE, json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    _write_atomic(out / REPORT_FILE, render(results))
    log(f"eval: wrote {out / RESULTS_FILE} and {out / REPORT_FILE} ({results['duration_s']}s)")
    return results


def load_results(model_dir: str | Path) -> Optional[dict]:
    path = Path(model_dir) / RESULTS_DIR / RESULTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
