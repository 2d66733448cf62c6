"""charts/llm-serve/files/gate.py, the init step of every vLLM replica, run for real on local
directories: it refuses a checkpoint without a positive promotion verdict and says why, copies a
promoted one, and serves an unpromoted one only with a reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from chart_harness import CHARTS_DIR

GATE = CHARTS_DIR / "llm-serve" / "files" / "gate.py"


@pytest.fixture
def checkpoint(tmp_path):
    ckpt = tmp_path / "export"
    (ckpt / "tokenizer").mkdir(parents=True)
    (ckpt / "config.json").write_text('{"model_type": "llama"}')
    (ckpt / "model.safetensors").write_bytes(b"\0" * 1024)
    (ckpt / "tokenizer" / "tokenizer.json").write_text("{}")
    return ckpt


def gate(*args, env=None):
    return subprocess.run([sys.executable, str(GATE), *map(str, args)], capture_output=True, text=True, timeout=60, env=env)


def test_should_copy_a_promoted_checkpoint(checkpoint, tmp_path):
    (checkpoint / "promotion.json").write_text(json.dumps({"promoted": True, "reasons": ["french_bench_mc 0.41 >= 0.25"]}))
    dest = tmp_path / "models" / "model"
    run = gate("--model", checkpoint, "--promotion", checkpoint / "promotion.json", "--dest", dest)
    assert run.returncode == 0, run.stderr
    assert (dest / "tokenizer" / "tokenizer.json").read_text() == "{}"
    assert (dest / "model.safetensors").stat().st_size == 1024
    assert "is promoted" in run.stdout and "copied 4 files" in run.stdout


def test_should_refuse_a_checkpoint_the_gate_did_not_promote_and_say_why(checkpoint, tmp_path):
    (checkpoint / "promotion.json").write_text(json.dumps({"promoted": False, "reasons": ["french_bench_mc 0.12 < 0.25"]}))
    dest = tmp_path / "dest"
    run = gate("--model", checkpoint, "--promotion", checkpoint / "promotion.json", "--dest", dest)
    assert run.returncode == 3
    assert "refused: french_bench_mc 0.12 < 0.25" in run.stderr
    assert "it is not promoted" in run.stderr
    assert not dest.exists()


def test_should_refuse_a_checkpoint_never_evaluated(checkpoint, tmp_path):
    run = gate("--model", checkpoint, "--promotion", checkpoint / "promotion.json", "--dest", tmp_path / "dest")
    assert run.returncode == 3
    assert "no promotion verdict" in run.stderr and "infratech submit eval" in run.stderr


@pytest.mark.parametrize("content", ['"promoted"', "not json", '{"promoted": "yes"}'])
def test_should_refuse_a_verdict_it_cannot_read_as_promoted(checkpoint, tmp_path, content):
    (checkpoint / "promotion.json").write_text(content)
    assert gate("--model", checkpoint, "--promotion", checkpoint / "promotion.json", "--dest", tmp_path / "d").returncode == 3


def test_should_serve_unpromoted_only_with_a_reason_and_log_it(checkpoint, tmp_path):
    (checkpoint / "promotion.json").write_text(json.dumps({"promoted": False, "reason": "perplexity 812 > 500"}))
    run = gate("--model", checkpoint, "--promotion", checkpoint / "promotion.json", "--dest", tmp_path / "d", "--force-reason", "A/B test approved")
    assert run.returncode == 0
    assert "NOT promoted, served anyway: A/B test approved" in run.stdout
    assert "perplexity 812 > 500" in run.stdout


def test_should_fail_on_an_empty_checkpoint(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "p.json").write_text('{"promoted": true}')
    run = gate("--model", empty, "--promotion", tmp_path / "p.json", "--dest", tmp_path / "d")
    assert run.returncode == 2 and "no files to serve" in run.stderr


def test_bucket_aliases_should_need_the_secrets_bucket_names(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("S3_BUCKET_")}
    run = gate("--model", "s3://@checkpoints/t/x", "--promotion", "s3://@checkpoints/t/x/promotion.json", "--dest", tmp_path / "d", env=env)
    assert run.returncode == 2
    assert "S3_BUCKET_CHECKPOINTS, which is not set" in run.stderr


def test_the_configmap_should_carry_this_very_script():
    from chart_harness import one, rendered

    cm = one(rendered("llm-serve", CHARTS_DIR / "llm-serve" / "ci" / "01-gateway-values.yaml", namespace="serving"), "ConfigMap")
    assert cm["data"]["gate.py"] == GATE.read_text()
