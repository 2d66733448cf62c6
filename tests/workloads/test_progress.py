"""workloads.progress, the one progress display of `infratech up`, the bootstrap, `make pipeline`
and `jobs watch`: plain lines off a terminal (CI, logs, pipes), a live line on a real pseudo-terminal."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from pty_run import run_on_pty
from workloads_fakes import REPO

from workloads.progress import ERASE_LINE, Progress, duration

DRIVER = """
import sys
from workloads.progress import Progress
p = Progress("demo", clock=lambda: 0.0)  # a still clock: the lines do not depend on speed
with p.phase("copy", total=3):
    for i in range(3):
        p.advance(note=f"file-{i}")
p.start("check")
p.log("all sums match")
p.end("3 files verified")
p.changed("3 files copied")
p.summary()
"""


def test_off_a_terminal_every_event_is_one_plain_line():
    out = io.StringIO()
    now = [0.0]  # the test moves the clock: the lines' times are known without waiting
    p = Progress("demo", stream=out, clock=lambda: now[0])
    with p.phase("copy", total=3):
        for name in "abc":
            now[0] += 10
            p.advance(note=name)
            p.update(note=name)  # nothing moved: no line
        now[0] += 10
    with pytest.raises(RuntimeError):
        with p.phase("check"):
            now[0] += 10
            raise RuntimeError("sha256 differs for c")
    p.changed("3 files copied")
    lines = p.summary()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == [
        "[demo] copy: started (0/3)",
        "[demo] copy: 1/3 · 10s · a",
        "[demo] copy: 2/3 · 20s · b",
        "[demo] copy: 3/3 · 30s · c",
        "[demo] copy: done (3/3, 40s)",
        "[demo] check: started",
        "[demo] check: failed: sha256 differs for c (10s)",
        *lines,
    ]
    assert lines == ["demo: 2 phase(s) in 50s", "  copy                 40s  done",
                     "  check                10s  failed: sha256 differs for c", "  changed: 3 files copied"]


def test_off_a_terminal_progress_lines_come_by_tenths_or_every_30_seconds():
    out = io.StringIO()
    now = [0.0]
    p = Progress("train", stream=out, clock=lambda: now[0])
    p.start("steps", total=100)
    for step in range(1, 101):
        now[0] += 1.0
        p.update(done=step)
    p.start("upload")  # no total: time decides
    for n in range(1, 71):
        now[0] += 1.0
        p.update(done=n, note=f"part-{n}")
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    steps = [line.split(" · ")[0] for line in lines if line.startswith("steps: ") and "·" in line]
    assert steps == [f"steps: {n}/100" for n in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)]
    parts = [line.split(" · ")[-1] for line in lines if line.startswith("upload: ") and "·" in line]
    assert parts == ["part-1", "part-31", "part-61"]


def test_through_a_pipe_the_same_program_prints_plain_lines():
    proc = subprocess.run([sys.executable, "-c", DRIVER], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr
    assert "[demo] copy: 2/3 · 0s · file-1" in proc.stderr.splitlines()


def test_on_a_terminal_it_is_a_live_line_redrawn_in_place():
    rc, terminal, _ = run_on_pty([sys.executable, "-c", DRIVER], cwd=REPO, timeout=60)
    assert rc == 0, terminal
    assert terminal.count(ERASE_LINE) >= 4  # each event redraws the status line in place
    assert "[demo] copy: 2/3 · 0s · file-1" in terminal  # the status line: phase, done/total, time, note
    assert "[demo] all sums match" in terminal and "  changed: 3 files copied" in terminal


def test_under_ci_a_terminal_still_gets_plain_lines():
    # run_on_pty drops CI (a person's terminal); the program sets it as a CI runner with a pty would
    rc, terminal, _ = run_on_pty([sys.executable, "-c", f"import os; os.environ['CI'] = 'true'\n{DRIVER}"], cwd=REPO, timeout=60)
    assert rc == 0 and ERASE_LINE not in terminal and "[demo] copy: 2/3 · 0s · file-1" in terminal


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3725, "1h02m")])
def test_durations_are_short(seconds, text):
    assert duration(seconds) == text
