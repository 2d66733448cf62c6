"""Fixtures the submit tests share: the kube-apiserver double (api_server_double.py) on 127.0.0.1."""

from __future__ import annotations

import tempfile

import api_server_double
import pytest


@pytest.fixture(scope="module")
def api_server():
    """The double's URL, one server per test module."""
    url, server = api_server_double.start()
    yield url
    server.shutdown()


@pytest.fixture
def discovery_cache(tmp_path, monkeypatch):
    """The Kubernetes client's discovery cache in this test's own directory, not shared /tmp."""
    pytest.importorskip("kubernetes")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture(autouse=True)
def _built_images(built_images):
    """Every submission here runs images of a build (tests/conftest.py: built_images)."""
    return built_images
