"""The promotion gate on crafted evaluation results: no model runs here, a second in all.

Each case writes a model directory (config + a weights file), an ``evaluation/results.json`` naming
those exact files, and checks the verdict ``promotion.json`` and what serving reads from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.errors import UserError
from workloads.eval import modelfiles
from workloads.gate import decide as gate
from workloads.gate import thresholds as th_mod
from workloads.gate.registry import Registry

REPO = Path(__file__).resolve().parents[2]


def make_model(root: Path, weights: bytes = b"weights-v1", name: str = "model") -> Path:
    model = root / name
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (model / "model.safetensors").write_bytes(weights)
    (model / "tokenizer.json").write_text("{}")
    return model


def write_results(model: Path, scores: dict[str, float], *, suite: str = "cpu_smoke", limit=None,
                  lower_is_better=("heldout/perplexity",)) -> dict:
    files = modelfiles.model_files(model)
    results = {
        "schema": "infratech-eval-v1",
        "model": {"path": str(model), "fingerprint": modelfiles.fingerprint(files), "files": files},
        "suite": {"name": suite}, "backend": "hf", "limit": limit, "started": "2026-11-29T00:00:00+00:00",
        "scores": {k: {"value": v, "stderr": None, "higher_is_better": k not in lower_is_better, "n": 30,
                       "num_fewshot": 0} for k, v in scores.items()},
    }
    (model / "evaluation").mkdir(exist_ok=True)
    (model / "evaluation" / "results.json").write_text(json.dumps(results))
    return results


def thresholds(tmp_path: Path, text: str):
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    return th_mod.load(str(path))


GOOD = {"infratech_fr/acc": 0.62, "heldout/perplexity": 9.5}
TH = """
suite: cpu_smoke
min_scores: {infratech_fr/acc: 0.5}
max_perplexity: {heldout: 12}
max_regression: {infratech_fr/acc: 0.02, heldout/perplexity: 10%}
"""


def test_good_results_are_promoted_with_their_evidence(tmp_path):
    model = make_model(tmp_path)
    write_results(model, GOOD)
    verdict = gate.decide(model, *thresholds(tmp_path, TH), Registry(str(tmp_path / "reg")))
    assert verdict["verdict"] == "promoted" and verdict["promoted"] is True and verdict["reasons"] == []
    saved = json.loads((model / "promotion.json").read_text())
    assert saved == verdict
    assert set(saved["model"]["files"]) == {"config.json", "model.safetensors", "tokenizer.json"}
    assert saved["thresholds"]["sha256"] and saved["results"]["sha256"]
    assert {c["rule"] for c in saved["checks"]} == {"evidence", "suite", "min_score", "max_perplexity",
                                                      "max_regression"}
    ok, reasons, _ = gate.status(model)
    assert ok and reasons == []
    assert len(Registry(str(tmp_path / "reg")).entries()) == 1


@pytest.mark.parametrize("scores, expected", [
    ({"infratech_fr/acc": 0.41, "heldout/perplexity": 9.5}, "infratech_fr/acc = 0.41 (minimum 0.5)"),
    ({"infratech_fr/acc": 0.62, "heldout/perplexity": 30.0}, "heldout/perplexity = 30.0 (maximum 12.0)"),
    ({"heldout/perplexity": 9.5}, "infratech_fr/acc is not in the results"),
    ({"infratech_fr/acc": 0.62}, "heldout/perplexity is not in the results"),
])
def test_results_below_a_threshold_or_missing_a_metric_are_rejected_saying_which(tmp_path, scores, expected):
    model = make_model(tmp_path)
    write_results(model, scores)
    verdict = gate.decide(model, *thresholds(tmp_path, TH), Registry(str(tmp_path / "reg")))
    assert verdict["verdict"] == "rejected" and verdict["promoted"] is False
    assert any(expected in r for r in verdict["reasons"]), verdict["reasons"]
    ok, reasons, _ = gate.status(model)
    assert not ok and any(expected in r for r in reasons)
    assert Registry(str(tmp_path / "reg")).entries() == []  # a rejection is never a baseline


def test_regression_against_the_last_promoted_checkpoint(tmp_path):
    reg = Registry(str(tmp_path / "reg"))
    th = thresholds(tmp_path, TH)
    first = make_model(tmp_path, b"v1", "step-1000")
    write_results(first, GOOD)
    assert gate.decide(first, *th, reg)["verdict"] == "promoted"

    # still above every floor, but 3 points of accuracy below the promoted one (allowed: 2)
    worse = make_model(tmp_path, b"v2", "step-2000")
    write_results(worse, {"infratech_fr/acc": 0.59, "heldout/perplexity": 9.6})
    verdict = gate.decide(worse, *th, reg)
    assert verdict["verdict"] == "rejected"
    assert verdict["baseline"]["model"] == str(first.resolve())
    assert any("infratech_fr/acc = 0.59 vs 0.62 promoted" in r for r in verdict["reasons"]), verdict["reasons"]

    # perplexity 12% higher than the baseline's (allowed: 10%) though under the 12 ceiling
    ppl = make_model(tmp_path, b"v3", "step-3000")
    write_results(ppl, {"infratech_fr/acc": 0.63, "heldout/perplexity": 10.64})
    verdict = gate.decide(ppl, *th, reg)
    assert [c["metric"] for c in verdict["checks"] if not c["passed"]] == ["heldout/perplexity"]

    better = make_model(tmp_path, b"v4", "step-4000")
    write_results(better, {"infratech_fr/acc": 0.61, "heldout/perplexity": 9.0})  # -1 point: allowed
    assert gate.decide(better, *th, reg)["verdict"] == "promoted"
    assert [e["model"] for e in reg.entries()] == [str(first.resolve()), str(better.resolve())]


def test_weights_changed_after_evaluation_are_not_promoted(tmp_path):
    model = make_model(tmp_path)
    write_results(model, GOOD)
    (model / "model.safetensors").write_bytes(b"weights-v2")
    verdict = gate.decide(model, *thresholds(tmp_path, TH))
    assert verdict["verdict"] == "rejected"
    assert any("computed on other files" in r and "model.safetensors" in r for r in verdict["reasons"])


def test_weights_changed_after_promotion_are_not_servable(tmp_path):
    model = make_model(tmp_path)
    write_results(model, GOOD)
    assert gate.decide(model, *thresholds(tmp_path, TH))["verdict"] == "promoted"
    (model / "model.safetensors").write_bytes(b"swapped")
    ok, reasons, _ = gate.status(model)
    assert not ok and "model.safetensors" in reasons[0] and "differ from those the gate judged" in reasons[0]


def test_a_subset_evaluation_or_another_suite_cannot_promote(tmp_path):
    model = make_model(tmp_path)
    write_results(model, GOOD, limit=5, suite="french")
    verdict = gate.decide(model, *thresholds(tmp_path, TH))
    failed = {c["rule"] for c in verdict["checks"] if not c["passed"]}
    assert failed == {"complete", "suite"}
    model2 = make_model(tmp_path, name="allowed")
    write_results(model2, GOOD, limit=5)
    assert gate.decide(model2, *thresholds(tmp_path, TH + "allow_subset: true\n"))["verdict"] == "promoted"


def test_never_gated_and_not_evaluated_say_what_to_run(tmp_path):
    model = make_model(tmp_path)
    ok, reasons, verdict = gate.status(model)
    assert not ok and verdict is None and "python -m workloads.gate decide" in reasons[0]
    with pytest.raises(UserError, match="evaluate it first"):
        gate.decide(model, *thresholds(tmp_path, TH))


@pytest.mark.parametrize("text, message", [
    ("max_regression: {a/acc: 'x%'}", "is not a percentage"),
    ("min_score: {a/acc: 0.5}", "Extra inputs are not permitted"),
    ("min_scores: {a/acc: high}", "valid number"),
    ("max_regression: {a/acc: -1}", "greater than or equal to 0"),
])
def test_bad_thresholds_are_refused_with_the_key(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        thresholds(tmp_path, text)


def test_thresholds_forms_and_shipped_files():
    th, source = th_mod.load("debug_tiny")
    assert th.suite == "cpu_smoke" and "heldout/perplexity" in th.max_perplexity
    assert th.max_regression["heldout/perplexity"].relative and th.max_regression["heldout/perplexity"].amount == 0.25
    assert source["path"].endswith("debug_tiny.yaml") and len(source["sha256"]) == 64
    release, _ = th_mod.load("french_7b")
    assert release.suite == "french" and not release.max_regression["arc_fr/acc_norm"].relative
    with pytest.raises(UserError, match="shipped: debug_tiny, french_7b"):
        th_mod.load("nope")


def test_cli_exit_codes_and_output(tmp_path):
    model = make_model(tmp_path)
    write_results(model, {"infratech_fr/acc": 0.2, "heldout/perplexity": 9.5})
    th = tmp_path / "th.yaml"
    th.write_text(TH)
    run = lambda *a: subprocess.run([sys.executable, "-m", "workloads.gate", *a], cwd=REPO,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    rejected = run("decide", str(model), "--thresholds", str(th), "--registry", str(tmp_path / "reg"))
    assert rejected.returncode == 1 and "FAIL  min_score" in rejected.stdout and "rejected" in rejected.stdout
    status = run("status", str(model))
    assert status.returncode == 1 and "rejected by the gate" in status.stdout
    bad = run("decide", str(model), "--thresholds", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown thresholds")
    write_results(model, GOOD)
    promoted = run("decide", str(model), "--thresholds", str(th), "--registry", str(tmp_path / "reg"))
    assert promoted.returncode == 0 and "promoted" in promoted.stdout
    assert run("status", str(model)).returncode == 0


def test_an_s3_checkpoint_is_copied_in_and_its_evidence_sent_back_verdict_last(tmp_path, monkeypatch):
    """What the llm-eval chart's Job does around the evaluation: --checkpoint=s3://… --output=s3://…"""
    from workloads import objectstore
    from workloads.eval import __main__ as cli
    from workloads.gate.registry import default_location
    from workloads_fakes import FakeS3

    s3 = FakeS3()
    monkeypatch.setattr(objectstore, "_client_factory", lambda: s3)
    model = make_model(tmp_path)
    objectstore.upload_dir(model, "s3://ckpt/team/run/export")
    local = cli._local("s3://ckpt/team/run/export", str(tmp_path / "cache"))
    assert modelfiles.model_files(local) == modelfiles.model_files(model)
    write_results(local, GOOD)
    gate.decide(local, *thresholds(tmp_path, TH), Registry(default_location("s3://ckpt/team/run/export")))
    s3.calls.clear()
    cli._publish_evidence(local, "s3://ckpt/team/run/export")
    uploads = [c.split(" ", 1)[1] for c in s3.calls if c.startswith("upload")]
    assert uploads == ["team/run/export/evaluation/results.json", "team/run/export/promotion.json"]
    assert ("ckpt", "team/run/promotions/registry.json") in s3.objects  # the registry beside the run's export
    assert default_location(str(tmp_path / "models" / "m1")) == str(tmp_path / "models" / "promotions")
