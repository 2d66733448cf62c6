"""Wheel locks of the images: ``images/<image>/requirements-<variant>.in`` (what we ask for) ->
``requirements-<variant>.lock`` (every package, exact version, sha256 of the wheel).

The lock is resolved by pip itself (``pip install --dry-run --report``: the same resolver and the
same index configuration as any install on this machine), so it holds the whole dependency tree;
the image installs it with ``--require-hashes --no-deps --no-index`` from a wheelhouse that
``pip download`` filled and that is checked against the lock's hashes before use.

    python -m infratech.images lock [--variant cpu|cuda] [IMAGE ...]   # rewrite the locks
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from workloads.files import sha256_file

LINE = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})$")


class LockError(RuntimeError):
    """A lock is missing, malformed, or a wheel does not match it."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str

    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read(path: Path) -> list[Pin]:
    """The pins of a lock file; a malformed line is an error naming the file and line."""
    if not path.is_file():
        raise LockError(f"{path}: no such lock (python -m infratech.images lock writes it)")
    pins = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        m = LINE.match(text)
        if not m:
            raise LockError(f"{path}:{n}: expected 'name==version --hash=sha256:<64 hex>', got {text!r}")
        pins.append(Pin(normalize(m["name"]), m["version"], m["sha"]))
    return pins


def clashes(parent: Iterable[Pin], pins: Iterable[Pin]) -> list[str]:
    """The packages ``pins`` lock differently from ``parent`` (an image built on another
    installs only what its parent lacks, so a shared package must be pinned alike)."""
    have = {p.name: p for p in parent}
    return [f"{p.name} {have[p.name].version} vs {p.version}" for p in pins if p.name in have and have[p.name] != p]


def digest(path: Path) -> str:
    """The lock's own digest (the images carry it as an annotation)."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def pip_source(index: str | None) -> tuple[list[str], dict[str, str] | None]:
    """pip's arguments and environment for ``index``: None is this machine's own configuration
    (find-links, mirrors, constraints); a URL is that index alone, every pip setting of the
    machine left out (its find-links may offer a build of the same version, e.g. torch +cpu)."""
    if index is None:
        return [], None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return ["--index-url", index], env


def resolve(requirements: Path, exclude: tuple[str, ...] = (), index: str | None = None) -> list[Pin]:
    """Resolve ``requirements`` with pip's resolver, from ``index`` (default: this machine's index
    configuration). pip reads the wheels' metadata only (PEP 658): nothing is downloaded."""
    args, env = pip_source(index)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                               *args, "--report", str(report), "-r", requirements.name],
                              cwd=requirements.parent, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise LockError(f"pip could not resolve {requirements}: {proc.stderr[-3000:]}")
        items = json.loads(report.read_text())["install"]
    pins = []
    for item in items:
        name = normalize(item["metadata"]["name"])
        if name in exclude:
            continue
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            raise LockError(f"{requirements}: pip gave no sha256 for {name} ({item['download_info']['url']})")
        pins.append(Pin(name, item["metadata"]["version"], hashes["sha256"]))
    return sorted(pins, key=lambda p: p.name)


def write(path: Path, pins: list[Pin], source: Path, exclude: tuple[str, ...], index: str | None = None) -> None:
    head = [f"# Generated from {source.name} by `python -m infratech.images lock`; do not edit.",
            "# Installed with pip install --require-hashes --no-deps --no-index (the whole tree is here)."]
    if exclude:
        head.append(f"# Left out on purpose: {', '.join(exclude)} (infratech/images/spec.py says why).")
    if index:
        head.append(f"# Resolved from {index} alone (infratech/images/spec.py: INDEX).")
    path.write_text("\n".join(head + [p.line() for p in pins]) + "\n")


def wheelhouse(pins: list[Pin], folder: Path, log=print, index: str | None = None) -> dict[Pin, Path]:
    """Fill ``folder`` with exactly the locked files (pip download, this machine's index
    configuration), check every file against its hash; returns each pin's file. Most are wheels;
    a few projects publish only a source archive (rouge-score, sqlitedict, word2number)."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in pins if not _find(folder, p)]
    if missing:
        log(f"pip download: {len(missing)} file(s) into {folder}")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            req.write("\n".join(p.line() for p in missing) + "\n")
        args, env = pip_source(index)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", *args,
                               "-d", str(folder), "-r", req.name], capture_output=True, text=True, env=env)
        Path(req.name).unlink()
        if proc.returncode != 0:
            raise LockError(f"pip download failed: {proc.stderr[-3000:]}")
    found = {}
    for pin in pins:
        path = _find(folder, pin)
        if path is None:
            raise LockError(f"{pin.name}=={pin.version}: nothing in {folder} after pip download")
        if sha256_file(path) != pin.sha256:
            raise LockError(f"{path}: sha256 differs from the lock ({pin.sha256})")
        found[pin] = path
    return found


def _find(folder: Path, pin: Pin) -> Path | None:
    for path in folder.iterdir():
        if path.name.endswith(".whl"):
            name, version = path.name.split("-")[:2]
        elif path.name.endswith((".tar.gz", ".zip")):
            name, _, version = path.name.removesuffix(".tar.gz").removesuffix(".zip").rpartition("-")
        else:
            continue
        if normalize(name) == pin.name and version.replace("%2B", "+") == pin.version:
            return path
    return None
