"""The CPU training image (`make images`): what it is made of, and the tiny training run inside it,
as its numeric user on a read-only root filesystem, to an exported checkpoint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from images_harness import in_image

from infratech.images import build, lock, spec

pytestmark = pytest.mark.images
ROOT = Path(__file__).resolve().parents[2]


def test_training_runs_in_the_image_as_its_user_to_a_checkpoint(trained, shared_work):
    assert (shared_work / "run/checkpoints/step-000000006/checkpoint.json").is_file()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (trained / name).is_file(), f"the export lacks {name}"
    assert (shared_work / "model").stat().st_uid == spec.UID, "the run did not write as the image's user"


def test_the_image_runs_as_a_numeric_non_root_user_on_a_read_only_root(train_image):
    cfg = build.inspect(train_image["ref"])["OCIv1"]["config"]
    assert cfg["User"] == f"{spec.UID}:{spec.UID}"
    probe = ("import os, pathlib; print(os.getuid(), os.getgid());"
             "pathlib.Path('/tmp/w').write_text('ok');"
             "exec('try:\\n open(\"/opt/venv/x\", \"w\")\\nexcept OSError as e:\\n print(e.errno)')")
    proc = in_image(train_image["ref"], "python", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(spec.UID), str(spec.UID), "30"], "not the user, or the root was writable (EROFS 30)"


def test_the_image_is_offline_and_carries_its_provenance(train_image):
    cfg = build.inspect(train_image["ref"])["OCIv1"]["config"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    notes = build.inspect(train_image["ref"])["ImageAnnotations"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert notes["org.opencontainers.image.revision"].removesuffix("-dirty") == head
    assert notes["io.infratech.lock.digest"] == lock.digest(ROOT / "images/train/requirements-cpu.lock")
    assert train_image["lock_digest"] == notes["io.infratech.lock.digest"]


def test_the_venv_holds_exactly_the_lock_and_no_pip_cache_or_history(train_image):
    listing = ("import importlib.metadata as m, json, os, glob;"
               "print(json.dumps({'dists': sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()),"
               "'leftovers': [p for p in ['/root/.cache', '/root/.bash_history', '/opt/venv/bin/pip', '/workspace/.bash_history']"
               " + glob.glob('/tmp/*') if os.path.exists(p)]}))")
    proc = in_image(train_image["ref"], "python", "-c", listing)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    locked = sorted(f"{p.name}=={p.version}" for p in lock.read(ROOT / "images/train/requirements-cpu.lock"))
    assert sorted(lock.normalize(d.split("==")[0]) + "==" + d.split("==")[1] for d in found["dists"]) == locked
    assert found["leftovers"] == []


def test_a_rebuild_gives_the_same_digest(train_image):
    """The code layer and the config are rebuilt every time; the same commit gives the same bytes
    (the base and venv layers are reused; docs/images.md reports their own rebuild)."""
    subprocess.run(["buildah", "rmi", train_image["ref"]], capture_output=True)
    again = build.build(["train"], "cpu", ROOT, ROOT / "build" / "images", log=lambda m: None)
    assert again["images"]["llm-train:cpu"]["digest"] == train_image["digest"]
