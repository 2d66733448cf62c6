"""The run report (python -m workloads.report) on a real tiny training run: the figures exist with
the series the run produced (read back from series.json, written from the figures' own lines, not
from pixels), the evaluation table carries the gate's thresholds, and the model card links it
without changing the model's fingerprint (the gate's verdict still holds)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")

from workloads_fakes import REPO, env, train_cmd  # noqa: E402

from workloads.eval import modelfiles  # noqa: E402
from workloads.gate import decide as gate  # noqa: E402
from workloads.gate import thresholds as th_mod  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A 6-step run exported at the end, with evaluation results and the debug_tiny gate's verdict."""
    run = tmp_path_factory.mktemp("report") / "run"
    proc = subprocess.run(train_cmd(run, "train.steps=6", "checkpoint.every=100"),
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = run / "export"
    files = modelfiles.model_files(model)
    results = {
        "schema": "infratech-eval-v1", "backend": "hf", "limit": None, "started": "2026-12-01T00:00:00+00:00",
        "model": {"path": str(model), "fingerprint": modelfiles.fingerprint(files), "files": files},
        "suite": {"name": "cpu_smoke"},
        "scores": {"infratech_fr/acc": {"value": 0.31, "stderr": 0.08, "higher_is_better": True, "n": 30, "num_fewshot": 0},
                   "infratech_fr_qcm/acc": {"value": 0.25, "stderr": 0.07, "higher_is_better": True, "n": 30, "num_fewshot": 0},
                   "heldout/perplexity": {"value": 33.5, "stderr": None, "higher_is_better": False, "n": 64}},
        "heldout": {"perplexity": 33.5, "nll_per_token": math.log(33.5), "tokens": 8128, "sequences": 64,
                    "seq_len": 128, "dataset": "build/heldout", "shards": ["shard-00000"], "dataset_manifest_sha256": "0" * 64},
    }
    (model / "evaluation").mkdir()
    (model / "evaluation" / "results.json").write_text(json.dumps(results))
    verdict = gate.decide(model, *th_mod.load("debug_tiny"))
    assert verdict["verdict"] == "promoted"
    report = subprocess.run([sys.executable, "-m", "workloads.report", str(run), "--model", str(model)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    return run, model, results


def _lines(series: dict, figure: str) -> dict:
    return {line["label"]: line for axis in series[figure]["axes"] for line in axis["lines"]}


def test_figures_are_pngs_with_the_runs_series(evaluated):
    run, model, results = evaluated
    out = model / "report"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    series = json.loads((out / "series.json").read_text())
    assert sorted(series) == ["loss.png", "lr.png", "perplexity.png", "throughput.png"]
    for name in series:
        assert (out / name).read_bytes()[:8] == PNG
    tokens = [float(r["tokens_seen"]) for r in records]
    loss = _lines(series, "loss.png")
    assert loss["training loss"]["x"] == tokens and loss["training loss"]["y"] == [r["loss"] for r in records]
    assert loss["held-out loss (mean NLL)"]["y"] == [pytest.approx(math.log(33.5))]
    assert _lines(series, "lr.png")["learning rate"]["y"] == [r["lr"] for r in records]
    assert _lines(series, "throughput.png")["tokens/s (all devices)"]["y"] == [r["tokens_per_s"] for r in records]
    assert "MFU (%)" not in _lines(series, "throughput.png")  # CPU: no peak, no MFU drawn
    ppl = _lines(series, "perplexity.png")
    assert ppl["held-out perplexity"]["y"] == [33.5]
    ceiling = yaml.safe_load((REPO / "workloads/gate/thresholds/debug_tiny.yaml").read_text())["max_perplexity"]["heldout"]
    assert set(ppl["gate: maximum held-out perplexity"]["y"]) == {ceiling}
    assert series["perplexity.png"]["axes"][0]["y_scale"] == "log"


def test_report_has_the_figures_and_the_evaluation_table_with_the_gates_thresholds(evaluated):
    _, model, _ = evaluated
    text = (model / "report" / "report.md").read_text()
    for name in ("loss.png", "lr.png", "throughput.png", "perplexity.png"):
        assert f"]({name})" in text
    row = next(line for line in text.splitlines() if line.startswith("| `heldout/perplexity`"))
    assert "33.5000" in row and "≤ 40" in row and row.endswith("| yes |")
    row = next(line for line in text.splitlines() if line.startswith("| `infratech_fr/acc`"))
    assert "0.3100" in row and "≥ 0" in row
    assert "Gate verdict: **promoted**" in text


def test_the_model_card_links_the_report_and_the_verdict_still_holds(evaluated):
    _, model, _ = evaluated
    card = (model / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\n")
    assert "(report/report.md)" in card and (model / "report" / "report.md").is_file()
    ok, reasons, _ = gate.status(model)  # card and report are evidence, outside the fingerprint
    assert ok, reasons


def test_a_relaunched_run_is_drawn_once_per_step_with_the_later_line(tmp_path):
    from workloads.report import data

    run = tmp_path / "run"
    run.mkdir()
    rec = {"lr": 1e-3, "tokens_per_s": 10.0, "tokens_seen": 0}
    lines = [{**rec, "step": 1, "loss": 5.0}, {**rec, "step": 2, "loss": 4.0}, {**rec, "step": 3, "loss": 3.9},
             {**rec, "step": 3, "loss": 3.5}, {**rec, "step": 4, "loss": 3.0}]  # killed after 3, resumed from 2
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert [r["loss"] for r in data.load(run).steps] == [5.0, 4.0, 3.5, 3.0]


@pytest.mark.parametrize("content, message", [
    (None, "metrics.jsonl: no such file"),
    ('{"step": 1, "loss": 2.0}\n', "metrics.jsonl:1: no lr, tokens_per_s, tokens_seen"),
    ("not json\n", "metrics.jsonl:1: not a JSON line"),
])
def test_bad_run_directories_are_named_without_traceback(tmp_path, content, message):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "metrics.jsonl").write_text(content)
    proc = subprocess.run([sys.executable, "-m", "workloads.report", str(run)], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
