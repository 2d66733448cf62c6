"""Sharded checkpoints with an atomic commit, verification on resume, retention and upload.

A checkpoint is written in ``<dir>/.staging-step-NNNNNNNNN``:

- ``*.distcp`` + ``.metadata``: model and optimizer, sharded, by ``torch.distributed.checkpoint``
- ``rng-rank-NNNNN.pt``: each rank's CPU/CUDA/numpy/python RNG states
- ``trainer_state.json``: step, data position, scheduler, the resolved run config
- ``tokenizer/``: the tokenizer, so the checkpoint exports on its own
- ``checkpoint.json`` (last): every file's size and sha256, hashed by all ranks in parallel

then renamed to ``<dir>/step-NNNNNNNNN``. A directory without ``checkpoint.json``, or whose files
do not match it, is incomplete: resume skips it with a log line and takes the next older one.
``<dir>`` must be visible to every rank (one node: a local disk; many nodes: a shared volume).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from .. import objectstore
from ..files import sha256_file
from .config import CheckpointConfig
from .distributed import Dist

MARKER = "checkpoint.json"
STATE = "trainer_state.json"
STAGING = ".staging-"
PREFIX = "step-"


def step_name(step: int) -> str:
    return f"{PREFIX}{step:09d}"


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # some shared filesystems refuse fsync on directories
        pass


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != MARKER)


class Checkpointer:
    def __init__(self, cfg: CheckpointConfig, root: Path, d: Dist, log: Callable[[str], None]):
        self.cfg, self.root, self.d, self.log = cfg, Path(root), d, log

    # ---- save ------------------------------------------------------------------------------
    def save(self, step: int, model, optimizer, state: dict, tokenizer_dir: Optional[Path]) -> Path:
        """Collective: every rank calls it at the same step."""
        t0 = time.perf_counter()
        final = self.root / step_name(step)
        staging = self.root / f"{STAGING}{step_name(step)}"
        if self.d.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        self.d.barrier()
        msd, osd = get_state_dict(model, optimizer)
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(staging))
        torch.save(_rng_state(self.d.device), staging / f"rng-rank-{self.d.rank:05d}.pt")
        if self.d.is_main:
            (staging / STATE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
            if tokenizer_dir is not None:
                shutil.copytree(tokenizer_dir, staging / "tokenizer")
        self.d.barrier()
        sums = self._hash_share(staging, _files(staging) if self.d.is_main else None)
        if self.d.is_main:
            marker = {"step": step, "world_size": self.d.world, "files": sums, "created": time.time(),
                      "torch": torch.__version__}
            tmp = staging / (MARKER + ".part")
            with open(tmp, "w") as fh:
                json.dump(marker, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, staging / MARKER)
            if final.exists():  # the same step saved again (SIGTERM right after a periodic save)
                shutil.rmtree(final)
            os.replace(staging, final)
            _fsync_dir(self.root)
            self.log(f"checkpoint: step {step} committed to {final} ({time.perf_counter() - t0:.1f}s)")
            self._retain()
            if self.cfg.upload:
                self._upload(final)
        self.d.barrier()
        return final

    def _hash_share(self, root: Path, names: Optional[list[str]]) -> dict:
        """Every rank hashes a share of the files; rank 0 gets the merged result."""
        names = self.d.broadcast_object(names)
        mine = {}
        for i, name in enumerate(names):
            if i % self.d.world == self.d.rank:
                path = root / name
                entry = {"bytes": path.stat().st_size}
                if self.cfg.verify == "sha256":
                    entry["sha256"] = sha256_file(path)
                mine[name] = entry
        merged: dict = {}
        for part in self.d.all_gather_object(mine):
            merged.update(part)
        return merged

    def _retain(self) -> None:
        for old in self.committed()[self.cfg.keep:]:
            shutil.rmtree(old, ignore_errors=True)
            self.log(f"checkpoint: removed {old.name} (keep={self.cfg.keep})")

    def _upload(self, path: Path) -> None:
        t0 = time.perf_counter()
        uri = objectstore.join(self.cfg.upload, path.name)
        n = objectstore.upload_dir(path, uri, last=(MARKER,))
        self.log(f"checkpoint: uploaded {n} files to {uri} ({time.perf_counter() - t0:.1f}s)")

    # ---- find and load -----------------------------------------------------------------------
    def committed(self) -> list[Path]:
        """Committed step directories, newest first (not yet verified)."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)), reverse=True)

    def _problem(self, path: Path, files: Optional[dict]) -> Optional[str]:
        """Collective check of one candidate: None when complete and matching its marker."""
        if files is None:
            return f"no {MARKER} (the save did not finish)"
        problems = []
        for i, (name, entry) in enumerate(sorted(files.items())):
            if i % self.d.world != self.d.rank:
                continue
            f = path / name
            if not f.is_file():
                problems.append(f"{name} missing")
            elif f.stat().st_size != entry["bytes"]:
                problems.append(f"{name} has {f.stat().st_size} bytes, expected {entry['bytes']}")
            elif "sha256" in entry and self.cfg.verify == "sha256" and sha256_file(f) != entry["sha256"]:
                problems.append(f"{name} sha256 does not match")
        found = [p for part in self.d.all_gather_object(problems) for p in part]
        return "; ".join(found[:5]) if found else None

    def latest(self) -> Optional[Path]:
        """The newest complete checkpoint (all ranks agree), fetched from object storage when
        the local directory has none; incomplete ones are logged and skipped."""
        candidates = None
        if self.d.is_main:
            for stale in sorted(self.root.glob(f"{STAGING}*")) if self.root.is_dir() else []:
                self.log(f"checkpoint: ignoring incomplete checkpoint {stale.name} (never committed); removing it")
                shutil.rmtree(stale, ignore_errors=True)
            candidates = [str(p) for p in self.committed()]
            if not candidates and self.cfg.upload:
                fetched = self._download_latest()
                candidates = [str(fetched)] if fetched else []
        for cand in self.d.broadcast_object(candidates):
            path = Path(cand)
            files = None
            if self.d.is_main and (path / MARKER).is_file():
                try:
                    files = json.loads((path / MARKER).read_text())["files"]
                except (ValueError, KeyError):
                    files = None
            problem = self._problem(path, self.d.broadcast_object(files))
            if problem is None:
                return path
            if self.d.is_main:
                self.log(f"checkpoint: skipping incomplete checkpoint {path.name}: {problem}")
        return None

    def _download_latest(self) -> Optional[Path]:
        steps = sorted({uri.rstrip("/").split("/")[-2] for uri, _ in objectstore.list_objects(self.cfg.upload.rstrip("/") + "/")
                        if uri.endswith("/" + MARKER)}, reverse=True)
        if not steps:
            return None
        dest = self.root / steps[0]
        n = objectstore.download_dir(objectstore.join(self.cfg.upload, steps[0]), dest)
        self.log(f"checkpoint: downloaded {steps[0]} ({n} files) from {self.cfg.upload}")
        return dest

    def load(self, path: Path, model, optimizer) -> dict:
        """Collective: restore model and optimizer shards, this rank's RNG; return trainer state."""
        msd, osd = get_state_dict(model, optimizer)
        state = {"model": msd, "optim": osd}
        dcp.load(state, checkpoint_id=str(path))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        trainer_state = json.loads((path / STATE).read_text())
        rng = path / f"rng-rank-{self.d.rank:05d}.pt"
        if trainer_state.get("world_size") == self.d.world and rng.is_file():
            _set_rng_state(torch.load(rng, weights_only=False), self.d.device)
        elif self.d.is_main:
            self.log(f"checkpoint: world size {trainer_state.get('world_size')} -> {self.d.world}: "
                     "RNG states not restored (model, optimizer, scheduler and data position are)")
        return trainer_state
