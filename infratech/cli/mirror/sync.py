"""``infratech mirror sync``: copy every image a stack runs into a registry, or to OCI layouts on a disk.

Each image is copied by ``skopeo copy --all --preserve-digests`` (every architecture of a
multi-architecture image, manifests byte for byte, so digests do not change), from its upstream
registry or from OCI layouts an earlier ``--to-dir`` wrote (``--from-dir``: the air-gapped side).
A lock file records image -> digest -> where it was copied; a rerun checks each destination
against the lock and copies only what is missing or different. A failed copy is retried, then
named, and the others go on; an unreachable destination stops before anything is copied, and
the lock keeps what earlier runs copied.

Destinations keep the original host in the path (``<registry>/<prefix>/<host>/<path>:<tag>``,
infratech/mirror/refs.py); a layout directory is ``DIR/<host>/<path>`` with the tag as its reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from workloads.progress import Progress

from ...mirror.refs import mirror_ref

LOCK_VERSION = 1


class SyncError(Exception):
    """Nothing can be copied: skopeo is missing, or the destination cannot be reached."""


@dataclass
class Result:
    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # image -> the last error


def _split(ref: str) -> tuple[str, str]:
    name, _, tag = ref.rpartition(":")
    return name, tag


def source(ref: str, from_dir: Optional[Path]) -> str:
    if from_dir is None:
        return f"docker://{ref}"
    name, tag = _split(ref)
    return f"oci:{from_dir / name}:{tag}"


def destination(ref: str, to: Optional[str], to_dir: Optional[Path]) -> str:
    """``docker://<to>/<host>/<path>:<tag>`` (``to`` is ``registry[/prefix]``) or ``oci:<dir>/<host>/<path>:<tag>``."""
    if to_dir is not None:
        name, tag = _split(ref)
        return f"oci:{to_dir / name}:{tag}"
    registry, _, prefix = (to or "").partition("/")
    return "docker://" + mirror_ref(ref, registry, prefix)


def read_lock(path: Path) -> dict:
    if not path.is_file():
        return {"version": LOCK_VERSION, "images": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("images", {})
    return data


def write_lock(path: Path, lock: dict) -> None:
    """Atomically: a reader never sees half a lock, and an interrupted run leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def reachable(to: str, timeout_s: float = 5.0) -> Optional[str]:
    """Why the registry ``to`` (host[:port][/prefix]) cannot be reached over TCP, or None."""
    host, _, port = to.split("/", 1)[0].partition(":")
    try:
        with socket.create_connection((host, int(port or 443)), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _digest_of(dest: str, tls_verify: bool, run: Callable) -> Optional[str]:
    """The digest of the manifest (or index) at ``dest``, or None when it is not there."""
    cmd = ["skopeo", "inspect", "--raw", dest]
    if dest.startswith("docker://"):
        cmd.insert(2, f"--tls-verify={str(tls_verify).lower()}")
    proc = run(cmd, capture_output=True)
    if proc.returncode != 0:
        return None
    return "sha256:" + hashlib.sha256(proc.stdout).hexdigest()


def _copy(src: str, dest: str, digest_file: Path, tls_verify: bool, run: Callable) -> tuple[bool, str]:
    if dest.startswith("oci:"):
        Path(dest[len("oci:"):].rsplit(":", 1)[0]).mkdir(parents=True, exist_ok=True)
    cmd = ["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--digestfile", str(digest_file)]
    if dest.startswith("docker://"):
        cmd.append(f"--dest-tls-verify={str(tls_verify).lower()}")
    proc = run([*cmd, src, dest], capture_output=True, text=True)
    last = (proc.stderr or "").strip().splitlines()
    return proc.returncode == 0, (last[-1] if last else f"skopeo exited {proc.returncode}")


def sync(images: list[str], lock_path: Path, *, to: Optional[str] = None, to_dir: Optional[Path] = None,
         from_dir: Optional[Path] = None, tls_verify: bool = True, retries: int = 2, retry_delay_s: float = 2.0,
         progress: Optional[Progress] = None, run: Callable = subprocess.run) -> Result:
    """Copy ``images`` to ``to`` (registry[/prefix]) or ``to_dir``; the lock at ``lock_path`` is
    updated after every image, so what was copied is kept whatever happens next."""
    if shutil.which("skopeo") is None:
        raise SyncError("skopeo is not installed (apt-get install skopeo)")
    if (to is None) == (to_dir is None):
        raise ValueError("give exactly one of to, to_dir")
    if to is not None:
        why = reachable(to)
        if why:
            raise SyncError(f"cannot reach the registry {to.split('/', 1)[0]}: {why}; nothing copied"
                            + (f", {lock_path} keeps what earlier runs copied" if lock_path.is_file() else ""))
    progress = progress or Progress("mirror sync")
    lock = read_lock(lock_path)
    result = Result()
    lock_path.parent.mkdir(parents=True, exist_ok=True)  # skopeo writes the digest file beside the lock
    digest_file = lock_path.with_suffix(".digest")
    with progress.phase("copy", total=len(images)):
        for i, ref in enumerate(images, 1):
            dest = destination(ref, to, to_dir)
            known = lock["images"].get(ref, {})
            if known.get("copies", {}).get(dest) and _digest_of(dest, tls_verify, run) == known.get("digest"):
                result.present.append(ref)
                progress.update(done=i, note=f"present {ref}")
                continue
            error = ""
            for attempt in range(retries + 1):
                if attempt:
                    progress.log(f"retry {attempt}/{retries} {ref}: {error}")
                    time.sleep(retry_delay_s * attempt)
                ok, error = _copy(source(ref, from_dir), dest, digest_file, tls_verify, run)
                if ok:
                    break
            if not ok:
                result.failed[ref] = error
                progress.log(f"FAILED {ref} after {retries + 1} attempt(s): {error}")
                progress.update(done=i)
                continue
            digest = digest_file.read_text(encoding="utf-8").strip()
            entry = lock["images"].setdefault(ref, {"digest": digest, "copies": {}})
            if entry.get("digest") != digest:  # upstream moved the tag: the copies of the old digest are stale
                entry.update(digest=digest, copies={})
            entry["copies"][dest] = digest
            write_lock(lock_path, lock)
            result.copied.append(ref)
            progress.log(f"copied {ref} {digest}")
            progress.update(done=i)
    digest_file.unlink(missing_ok=True)
    progress.changed(f"{len(result.copied)} copied, {len(result.present)} already there, {len(result.failed)} failed")
    return result
