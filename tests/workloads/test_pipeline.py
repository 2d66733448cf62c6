"""`make pipeline`'s program end to end on CPU, then rerun to show that it reuses what it made.

The first run does everything (data, 2-process training killed mid-run, resume, export, lm-eval,
gate, vLLM, openai requests) with the recipe's 40 steps (20 would leave the held-out perplexity too
close to the debug_tiny gate's ceiling): three to four minutes on 2 cores, one or two of them
vLLM's start. The rerun (``--no-serve``) must reuse every stage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lm_eval")
pytest.importorskip("openai")

from workloads_fakes import vllm_python_or_skip  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _pipeline(work: Path, *extra: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("INFRATECH_TRAIN_FAULT", "VLLM_API_KEY")}
    return subprocess.run([sys.executable, "-m", "workloads.pipeline", "--workdir", str(work), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    vllm_python_or_skip()
    work = tmp_path_factory.mktemp("pipeline")
    proc = _pipeline(work)
    print(proc.stdout)
    return work, proc


def test_the_whole_path_runs_and_serves_the_promoted_model(first_run):
    work, proc = first_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stages = json.loads((work / "pipeline.json").read_text())["stages"]
    assert [s["stage"] for s in stages] == ["data", "train", "resume", "export", "eval", "gate", "report", "serve", "requests"]
    by = {s["stage"]: s["what"] for s in stages}
    assert "killed after step 25" in by["train"] and "last complete checkpoint: step 20" in by["train"]
    assert "continued from step 20 to 40" in by["resume"]
    assert by["gate"] == "promoted"
    assert "wrong key refused (401)" in by["requests"]
    model = work / "models" / "debug_tiny-step-000000040"
    assert (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()
    results = json.loads((model / "evaluation" / "results.json").read_text())
    assert results["model"]["provenance"]["step"] == 40 and results["suite"]["name"] == "cpu_smoke"
    assert json.loads((model / "promotion.json").read_text())["verdict"] == "promoted"
    assert (work / "promotions" / "registry.json").is_file()
    assert "(report/report.md)" in (model / "README.md").read_text()  # the model card links the run report
    assert (model / "report" / "loss.png").is_file()
    assert oct((work / "api-key").stat().st_mode & 0o777) == "0o600"
    for line in ("completion  'Le chat regarde' -> ", "chat        'Où va le train ce matin ?' -> ",
                 "Where everything is:", "promotion verdict"):
        assert line in proc.stdout, line
    # training really resumed: the relaunch logged its resume and the metrics hold every step once or more
    lines = (work / "run" / "metrics.jsonl").read_text().splitlines()
    steps = {json.loads(line)["step"] for line in lines if line.strip()}
    assert steps == set(range(1, 41))
    assert results["scores"]["heldout/perplexity"]["value"] < 20


def test_a_rerun_reuses_every_stage(first_run):
    work, proc = first_run
    assert proc.returncode == 0
    again = _pipeline(work, "--no-serve", timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    stages = json.loads((work / "pipeline.json").read_text())["stages"]
    assert [s["stage"] for s in stages] == ["data", "train", "resume", "export", "eval", "gate", "report"]
    for s in stages:
        assert s["what"].startswith(("reused", "nothing to resume")), s
