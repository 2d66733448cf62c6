"""Sharded checkpoints with an atomic commit, verification on resume, retention and upload.

A checkpoint is written in ``<dir>/.staging-step-NNNNNNNNN``:

- ``*.distcp`` + ``.metadata``: model and optimizer, sharded, by ``torch.distributed.checkpoint``
- ``rng-rank-NNNNN.pt``: each rank's CPU/CUDA/numpy/python RNG states
- ``trainer_state.json``: step, data position, scheduler, the resolved run config
- ``tokenizer/``: the tokenizer, so the checkpoint exports on its own
- ``checkpoint.json`` (last): every file's size and sha256, hashed by all ranks in parallel

then renamed to ``<dir>/step-NNNNNNNNN``. A directory without ``checkpoint.json``, or whose files
do not match it, is incomplete: resume skips it with a log line and takes the next older one.

``<dir>`` need not be shared by all nodes. At start the ranks find which of them see the same
directory (a probe file each): one group when it is shared (one node's disk, or a volume every
node mounts), one group per node on per-pod disks (the llm-train chart's emptyDir). Each group's
lowest rank creates, renames and prunes its own copy; each rank hashes a share of its group's
files, and the marker, which lists the files of every group, is written by each group once all
have reported. Every group uploads its own files and rank 0 the marker last, so the uploaded
checkpoint is complete; the copies run in the background while training goes on (``upload.py``),
and a save first waits for the previous upload if it is still running. On resume each group
fetches from object storage the files its copy lacks (another node's shards, or all of them on a
fresh disk) before it is verified: a node that lost its disk resumes at the same step as the
others. Per-node directories need ``checkpoint.upload``: without it no node could ever hold a
whole checkpoint, and this is refused.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from .. import objectstore
from ..errors import UserError
from ..files import sha256_file
from .config import CheckpointConfig
from .distributed import Dist
from .upload import MARKER, Uploader

STATE = "trainer_state.json"
STAGING = ".staging-"
PREFIX = "step-"
PROBE = ".rank-probe-"


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
        self._groups: Optional[list[list[int]]] = None
        self._in_store: set[str] = set()  # complete in object storage, as found by latest()
        self.upload = Uploader(cfg.upload, cfg.upload_attempts, cfg.upload_backoff_s, d, lambda: self._leader, log)

    # ---- who shares the directory ------------------------------------------------------------
    def group(self) -> list[int]:
        """Collective, once: the ranks that see the same ``<dir>`` as this one (sorted)."""
        if self._groups is None:
            token = self.d.broadcast_object(uuid.uuid4().hex if self.d.is_main else None)
            self.root.mkdir(parents=True, exist_ok=True)
            mine = self.root / f"{PROBE}{token}-{self.d.rank:05d}"
            mine.write_text(token)
            self.d.barrier()
            # each name looked up, not the directory listed: a shared filesystem may serve a cached
            # listing, while a name never asked for before is looked up on the server
            seen = [r for r in range(self.d.world) if (self.root / f"{PROBE}{token}-{r:05d}").exists()]
            self.d.barrier()
            mine.unlink()
            groups = self.d.all_gather_object(seen)
            if any(groups[q] != g for g in groups for q in g):
                raise UserError(f"checkpoint.dir {self.root}: ranks see inconsistent sets of each other's files "
                                f"({groups}); use one shared volume for all nodes or a local disk per node")
            copies = sorted({tuple(g) for g in groups})
            if len(copies) > 1 and not self.cfg.upload:
                nodes = "; ".join(f"ranks {list(g)}" for g in copies)
                raise UserError(f"checkpoint.dir {self.root} is not shared by all ranks (each sees its own: {nodes}) "
                                "and checkpoint.upload is not set: no node could ever hold a whole checkpoint. Set "
                                "checkpoint.upload=s3://... or put checkpoint.dir on a volume every node mounts")
            if self.d.is_main and len(copies) > 1:
                self.log(f"checkpoint: {self.root} is per node ({len(copies)} copies); "
                         f"{self.cfg.upload} holds the whole checkpoints")
            self._groups = groups
        return self._groups[self.d.rank]

    @property
    def _leader(self) -> bool:
        return self.d.rank == self.group()[0]

    def _share(self, names: list[str]) -> list[str]:
        """This rank's share of its group's files, for hashing."""
        group = self.group()
        return [n for i, n in enumerate(names) if i % len(group) == group.index(self.d.rank)]

    def _per_group(self, value):
        """Each group leader's ``value`` -> ``{leader: value}`` on every rank."""
        gathered = self.d.all_gather_object(value if self._leader else None)
        return {g[0]: gathered[g[0]] for g in self._groups}

    # ---- save ------------------------------------------------------------------------------
    def save(self, step: int, model, optimizer, state: dict, tokenizer_dir: Optional[Path]) -> Path:
        """Collective: every rank calls it at the same step."""
        self.upload.wait(step)  # only blocks while the previous checkpoint is still uploading
        t0 = time.perf_counter()
        final = self.root / step_name(step)
        staging = self.root / f"{STAGING}{step_name(step)}"
        self.group()
        if self._leader:
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
        names = self._per_group(_files(staging) if self._leader else None)[self.group()[0]]
        mine = {name: self._entry(staging / name) for name in self._share(names)}
        sums: dict = {}
        for part in self.d.all_gather_object(mine):
            sums.update(part)
        marker = self.d.broadcast_object({"step": step, "world_size": self.d.world, "files": sums,
                                          "created": time.time(), "torch": torch.__version__})
        if self._leader:
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
            self._retain()
        self.log(f"checkpoint: step {step} committed to {final} ({time.perf_counter() - t0:.1f}s)")
        self.d.barrier()
        if self.cfg.upload:
            self.upload.start(final, names, step)
        return final

    def _entry(self, path: Path) -> dict:
        entry = {"bytes": path.stat().st_size}
        if self.cfg.verify == "sha256":
            entry["sha256"] = sha256_file(path)
        return entry

    def _retain(self) -> None:
        for old in self.committed()[self.cfg.keep:]:
            shutil.rmtree(old, ignore_errors=True)
            self.log(f"checkpoint: removed {old.name} (keep={self.cfg.keep})")

    # ---- find and load -----------------------------------------------------------------------
    def committed(self) -> list[Path]:
        """Committed step directories, newest first (not yet verified)."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)), reverse=True)

    def _problem(self, path: Path, files: Optional[dict]) -> Optional[str]:
        """Collective check of one candidate in every group's copy: None when complete and matching."""
        if files is None:
            return f"no {MARKER} (the save did not finish)"
        problems = []
        for name in self._share(sorted(files)):
            entry, f = files[name], path / name
            if not f.is_file():
                problems.append(f"{name} missing")
            elif f.stat().st_size != entry["bytes"]:
                problems.append(f"{name} has {f.stat().st_size} bytes, expected {entry['bytes']}")
            elif "sha256" in entry and self.cfg.verify == "sha256" and sha256_file(f) != entry["sha256"]:
                problems.append(f"{name} sha256 does not match")
        found = sorted({p for part in self.d.all_gather_object(problems) for p in part})
        return "; ".join(found[:5]) if found else None

    def latest(self) -> Optional[Path]:
        """The newest checkpoint complete in every group's copy (all ranks agree). Each group fetches
        what its copy lacks from object storage first; incomplete ones are logged and skipped."""
        local: list[str] = []
        if self._leader:
            for stale in sorted(self.root.glob(f"{STAGING}*")):
                if self.d.is_main:
                    self.log(f"checkpoint: ignoring incomplete checkpoint {stale.name} (never committed); removing it")
                shutil.rmtree(stale, ignore_errors=True)
            local = [p.name for p in self.committed()]
        remote = self.d.broadcast_object(self._remote_steps() if self.cfg.upload and self.d.is_main else [])
        names = sorted({n for part in self.d.all_gather_object(local) for n in part} | set(remote), reverse=True)
        self._in_store = set(remote)
        for name in names:
            path = self.root / name
            files = next((m for m in self._per_group(self._local_marker(path)).values() if m is not None), None)
            if files is None and name in remote:
                files = self.d.broadcast_object(self._remote_marker(name) if self.d.is_main else None)
            if files is not None and name in remote:
                self._fetch_missing(path, files)
            problem = self._problem(path, files)
            if problem is None:
                return path
            if self.d.is_main:
                self.log(f"checkpoint: skipping incomplete checkpoint {name}: {problem}")
        return None

    def upload_if_missing(self, path: Path, step: int) -> None:
        """After ``latest()``: start uploading ``path`` when the store has no complete copy of it (its
        upload failed or was cut short in an earlier launch). Every rank agrees: ``_in_store`` came
        from rank 0's listing, broadcast."""
        if not self.cfg.upload or path.name in self._in_store:
            return
        if self.d.is_main:
            self.log(f"checkpoint: {path.name} is not complete in {self.cfg.upload} (an earlier upload failed or "
                     "was cut short); uploading it again")
        names = self._per_group(_files(path) if self._leader else None)[self.group()[0]]
        self.upload.start(path, names, step)

    def _local_marker(self, path: Path) -> Optional[dict]:
        try:
            return json.loads((path / MARKER).read_text())["files"]
        except (OSError, ValueError, KeyError):
            return None

    def _remote_marker(self, name: str) -> Optional[dict]:
        try:
            return json.loads(objectstore.read_bytes(objectstore.join(self.cfg.upload, name, MARKER)))["files"]
        except (ValueError, KeyError):
            return None

    def _remote_steps(self) -> list[str]:
        prefix = self.cfg.upload.rstrip("/") + "/"
        return sorted({uri.rstrip("/").split("/")[-2] for uri, _ in objectstore.list_objects(prefix)
                       if uri.endswith("/" + MARKER)}, reverse=True)

    def _fetch_missing(self, path: Path, files: dict) -> None:
        """Collective: each group leader downloads the files its copy of ``path`` lacks, marker last."""
        fetched = 0
        if self._leader:
            uri = objectstore.join(self.cfg.upload, path.name)
            for name in sorted(files):
                if not (path / name).is_file():
                    objectstore.download(objectstore.join(uri, name), path / name)
                    fetched += 1
            if fetched or not (path / MARKER).is_file():
                objectstore.download(objectstore.join(uri, MARKER), path / MARKER)
        counts = self.d.all_gather_object(fetched)
        if self.d.is_main and any(counts):
            where = ", ".join(f"rank {r}'s copy {n}" for r, n in enumerate(counts) if n)
            self.log(f"checkpoint: downloaded {path.name} files from {self.cfg.upload}: {where}")

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
