"""Under CI a skipped test fails (a missing install step), except a test marked ``gpu``."""

from __future__ import annotations

import shutil
from pathlib import Path

pytest_plugins = ["pytester"]

INNER = """
import pytest

def test_needs_a_tool():
    pytest.skip("helm not found")

@pytest.mark.gpu
def test_needs_a_gpu():
    pytest.skip("no GPU here")
"""


def _run(pytester, monkeypatch, ci: str):
    shutil.copy(Path(__file__).with_name("conftest.py"), pytester.path / "conftest.py")
    pytester.makepyfile(test_inner=INNER)
    pytester.makeini("[pytest]\nmarkers =\n    gpu: needs a GPU\n")
    monkeypatch.setenv("CI", ci)
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")


def test_a_skip_fails_under_ci_but_a_gpu_skip_does_not(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "true")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true, where nothing may be missing*helm not found*"])


def test_outside_ci_a_skip_stays_a_skip(pytester, monkeypatch):
    _run(pytester, monkeypatch, "false").assert_outcomes(skipped=2)
