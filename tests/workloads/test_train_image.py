"""What the workload images' environment (infratech/images/spec.py, which `make images` writes into
every image) does to torch: applied to a torch process on this machine, so no image build is
needed to check it (tests/images runs the images themselves)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

from infratech.images import spec  # noqa: E402

def image_env() -> dict[str, str]:
    return dict(spec.ENV)


def test_the_image_bounds_inductor_compile_workers_per_rank():
    env = image_env()
    # without it torch starts min(32, CPUs it may run on) workers per rank, whatever the pod's limit
    assert "TORCHINDUCTOR_COMPILE_THREADS" in env, sorted(env)
    probe = "import torch._inductor.config as c; print(c.compile_threads)"
    out = subprocess.run([sys.executable, "-c", probe], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    threads = int(out.stdout.split()[-1])
    # a node runs up to 8 ranks; 8 x threads compile workers must stay within a pod's CPUs
    assert threads == int(env["TORCHINDUCTOR_COMPILE_THREADS"]) and 1 <= threads <= 4, threads


def test_the_image_asks_for_expandable_segments():
    settings = dict(kv.split(":", 1) for kv in image_env().get("PYTORCH_ALLOC_CONF", "").split(",") if kv)
    assert settings.get("expandable_segments") == "True", settings
