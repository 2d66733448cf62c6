"""Fixtures of the image tests: the CPU images built once per session with `make images`' own
code (buildah, a debootstrap root filesystem cached under build/images/rootfs like the role tests'
hosts), and a directory the image's numeric user may write to.

Building needs root, buildah, skopeo, debootstrap and systemd-nspawn (bash .ci/run installs them);
without them the tests that need an image skip and say why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from images_harness import in_image

from infratech.images import build, rootfs, spec

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "images"


def pytest_configure(config):
    config.addinivalue_line("markers", "images: builds or runs the workload images (root, buildah; tests/images)")


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the image tests need root (buildah, debootstrap, systemd-nspawn)"
    for tool in ("buildah", "skopeo", "debootstrap", "systemd-nspawn"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash .ci/run installs it)"
    try:
        rootfs.debian_mirrors()
    except rootfs.RootfsError as exc:
        return str(exc)
    return None


_BUILT: dict[str, dict] = {}


def built(key: str) -> dict:
    """The images.lock entry of image ``key`` (CPU), built at most once per session."""
    reason = skip_reason()
    if reason:
        pytest.skip(f"image tests skipped: {reason}")
    if key not in _BUILT:
        lock = build.build([key], "cpu", ROOT, OUT, log=lambda msg: print(f"[images] {msg}"))
        _BUILT[key] = lock["images"][f"{spec.get(key).name}:cpu"]
    return _BUILT[key]


@pytest.fixture(scope="session")
def train_image() -> dict:
    return built("train")


@pytest.fixture(scope="session")
def eval_image() -> dict:
    return built("eval")


@pytest.fixture(scope="session")
def serve_image() -> dict:
    return built("serve")


@pytest.fixture(scope="session")
def shared_work(tmp_path_factory) -> Path:
    """A directory owned by the images' user: the only writable place besides /tmp."""
    work = tmp_path_factory.mktemp("image-work")
    shutil.chown(work, spec.UID, spec.UID)
    work.chmod(0o755)
    return work


# data -> 6 training steps (checkpoint every 3) -> export: the tiny recipe, one process, on CPU
TRAIN_SCRIPT = """set -eu
python -m workloads.data synthetic --output /work/corpus/train.jsonl --documents 400 --seed 0
python -m workloads.data synthetic --output /work/corpus/heldout.jsonl --documents 60 --seed 1
python -m workloads.data prepare --input /work/corpus/train.jsonl --output /work/data/train --vocab-size 512 \
  --records /work/corpus/train.jsonl.records.yaml \
  --seq-len 128 --sequences-per-shard 256
python -m workloads.data prepare --input /work/corpus/heldout.jsonl --output /work/data/heldout \
  --records /work/corpus/heldout.jsonl.records.yaml \
  --tokenizer /work/data/train/tokenizer --seq-len 128 --sequences-per-shard 64
OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 1 -m workloads.train --recipe debug_tiny \
  run.dir=/work/run data.path=/work/data/train train.steps=6 checkpoint.every=3 export.at_end=false train.device=cpu
python -m workloads.train.export /work/run/checkpoints/step-000000006 /work/model --dtype float32
"""


@pytest.fixture(scope="session")
def trained(train_image, shared_work) -> Path:
    """The exported checkpoint of the tiny run made inside the training image (shared by the
    evaluation and serving tests)."""
    proc = in_image(train_image["ref"], "sh", "-c", TRAIN_SCRIPT, binds=(f"{shared_work}:/work",), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return shared_work / "model"
