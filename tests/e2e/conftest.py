"""Fixtures of the e2e tests: the kube-apiserver double (kube_double.py) on 127.0.0.1 with a
kubeconfig naming it, the Automation API double, and the default stack's offline outputs."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kube_double  # noqa: E402


@pytest.fixture(scope="module")
def kube_api():
    url, server = kube_double.start()
    yield url
    server.shutdown()


@pytest.fixture
def kube(kube_api, tmp_path, monkeypatch):
    """A healthy cluster answering on the double; ``kube.config_text`` is a kubeconfig naming it
    (the stack's kubeconfig output in these tests); $KUBECONFIG names no file, so only that one reaches it."""
    pytest.importorskip("kubernetes")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the client's discovery cache, this test's own
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    kube_double.reset()
    kube_double.config_text = kube_double.kubeconfig(kube_api, tmp_path / "kubeconfig").read_text()
    return kube_double
