"""The trainer's line for a person: on a terminal, beside each JSON metric line, step/total, loss,
tokens/s, MFU and time left; through a pipe (CI, a log collector) only the JSON lines."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from pty_run import run_on_pty  # noqa: E402
from workloads_fakes import REPO, env, train_cmd  # noqa: E402

HUMAN = re.compile(r"step (\d+)/6 · loss (\d+\.\d{4}) · [\d.]+k? tok/s · MFU n/a · \d+s elapsed · \d+(m\d\ds)?s? left")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_on_a_terminal_each_metric_step_has_a_line_for_a_person(tmp_path):
    run = tmp_path / "run"
    rc, terminal, stdout = run_on_pty(train_cmd(run, "train.steps=6", "metrics.log_every=2", "export.at_end=false",
                                                "checkpoint.every=100"), env=env(), cwd=REPO)
    assert rc == 0, terminal[-3000:]
    human = [HUMAN.search(line) for line in terminal.splitlines()]
    human = [m for m in human if m]
    records = _json_lines(stdout)
    assert [int(m.group(1)) for m in human] == [r["step"] for r in records] == [2, 4, 6]
    assert [m.group(2) for m in human] == [f"{r['loss']:.4f}" for r in records]
    # the JSON lines are what they always were: on stdout and in metrics.jsonl, same keys
    assert records == _json_lines((run / "metrics.jsonl").read_text())
    assert {"step", "loss", "grad_norm", "lr", "tokens_per_s", "mfu", "tokens_seen"} <= set(records[0])


def test_through_a_pipe_there_are_only_the_json_lines(tmp_path):
    proc = subprocess.run(train_cmd(tmp_path / "run", "train.steps=2", "export.at_end=false", "checkpoint.every=100"),
                          env=env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in _json_lines(proc.stdout)] == [1, 2]
    assert " tok/s · " not in proc.stderr + proc.stdout
