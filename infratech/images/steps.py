"""What a build step does to the machine, in one place: :class:`Buildah` does it, :class:`Plan`
writes it down instead. build.py runs the same code with either, so
``python -m infratech.images build --variant cuda --dry-run`` shows every buildah command, file
and locked wheel the build would use, without root, buildah, debootstrap or a download.

A plan builds cold: no image exists yet, so every layer is planned. It cannot know the digests
(``sha256:`` followed by zeros stands for them), nor which locked files are wheels and which are
source archives (that needs the files: all are planned as wheels).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import lock, rootfs, sbom

PLANNED_DIGEST = "sha256:" + "0" * 64


class BuildError(RuntimeError):
    """buildah or a build step failed."""


def sh(cmd: list[str], **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(cmd[:8])}` exited with {proc.returncode}: {(proc.stderr or proc.stdout)[-3000:]}")
    return proc.stdout.strip()


class Buildah:
    """The build's effects, done: buildah commands, files written into mounted containers."""

    dry_run = False

    def sh(self, cmd: list[str]) -> str:
        return sh(cmd)

    def exists(self, ref: str) -> bool:
        return subprocess.run(["buildah", "inspect", "--type", "image", ref], capture_output=True).returncode == 0

    def inspect(self, ref: str) -> dict:
        return json.loads(sh(["buildah", "inspect", "--type", "image", ref]))

    def labels(self, ref: str) -> dict:
        return self.inspect(ref)["OCIv1"]["config"].get("Labels") or {}

    def digest(self, ref: str) -> str:
        return sh(["buildah", "inspect", "--type", "image", "--format", "{{.FromImageDigest}}", ref])

    def commit(self, ctr: str, ref: str, timestamp: int) -> None:
        """Commit ``ctr`` as ``ref``; the image ``ref`` named before is removed unless still in use."""
        old = self.inspect(ref)["FromImageID"] if self.exists(ref) else None
        new = self.sh(["buildah", "commit", "--quiet", "--rm", "--identity-label=false", "--timestamp", str(timestamp), ctr, ref])
        if old and old != new:
            subprocess.run(["buildah", "rmi", old], capture_output=True)  # refused while a child image uses it

    def discard(self, ctr: str) -> None:
        subprocess.run(["buildah", "rm", ctr], capture_output=True)

    def write(self, path: Path, text: str, append: bool = False) -> None:
        with open(path, "a" if append else "w") as fh:
            fh.write(text)

    def mkdir(self, path: Path, owner: int) -> None:
        path.mkdir()
        shutil.chown(path, owner, owner)

    def copy(self, src: Path, dest: Path, mode: int) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        dest.chmod(mode)

    def rootfs(self, cache: Path, log) -> Path:
        return rootfs.ensure(cache, log=log)

    def wheelhouse(self, pins: list[lock.Pin], folder: Path, log, index: str | None) -> dict[lock.Pin, Path]:
        return lock.wheelhouse(pins, folder, log=log, index=index)

    def sbom(self, ref: str, path: Path, entry: dict) -> int:
        return sbom.write(ref, path, entry)

    def record(self, lock_file: Path, entry: dict) -> None:
        from .registry import record

        record(lock_file, entry)


@dataclass
class Plan(Buildah):
    """The build's effects, written down in order (``steps``) and not done."""

    steps: list[tuple] = field(default_factory=list)
    dry_run = True

    def sh(self, cmd: list[str]) -> str:
        self.steps.append(("run", tuple(cmd)))
        if cmd[:2] == ["buildah", "from"]:
            return f"working-container-{sum(1 for s in self.steps if s[1][:2] == ('buildah', 'from'))}"
        if cmd[:2] == ["buildah", "mount"]:
            return f"/planned/mount/{cmd[2]}"
        return ""

    def exists(self, ref: str) -> bool:
        return False

    def labels(self, ref: str) -> dict:
        return {}

    def digest(self, ref: str) -> str:
        return PLANNED_DIGEST

    def commit(self, ctr: str, ref: str, timestamp: int) -> None:
        self.sh(["buildah", "commit", "--quiet", "--rm", "--identity-label=false", "--timestamp", str(timestamp), ctr, ref])

    def discard(self, ctr: str) -> None:
        pass

    def write(self, path: Path, text: str, append: bool = False) -> None:
        self.steps.append(("append" if append else "write", str(path), text))

    def mkdir(self, path: Path, owner: int) -> None:
        self.steps.append(("mkdir", str(path), owner))

    def copy(self, src: Path, dest: Path, mode: int) -> None:
        self.steps.append(("copy", str(src), str(dest), mode))

    def rootfs(self, cache: Path, log) -> Path:
        tree = cache / f"{rootfs.SUITE}-{rootfs.cache_key()}"
        try:
            mirror = rootfs.debian_mirrors()[0]
        except rootfs.RootfsError as exc:
            mirror = f"<{exc}>"
        self.steps.append(("debootstrap", ("debootstrap", "--variant=minbase", f"--include={','.join(rootfs.PACKAGES)}",
                                           rootfs.SUITE, str(tree), mirror)))
        return tree

    def wheelhouse(self, pins: list[lock.Pin], folder: Path, log, index: str | None) -> dict[lock.Pin, Path]:
        self.steps.append(("download", index or "this machine's pip configuration", tuple(p.line() for p in pins)))
        return {p: folder / f"{p.name}-{p.version}-planned.whl" for p in pins}

    def sbom(self, ref: str, path: Path, entry: dict) -> int:
        self.steps.append(("sbom", ref, str(path)))
        return 0

    def record(self, lock_file: Path, entry: dict) -> None:
        self.steps.append(("record", str(lock_file), entry["image"], entry["variant"]))

    def lines(self) -> list[str]:
        """The plan as text, one step a line (files' contents and wheel lists shortened)."""
        out = []
        for step in self.steps:
            kind, rest = step[0], step[1:]
            if kind in ("run", "debootstrap"):
                out.append(shlex.join(rest[0]))
            elif kind == "download":
                out.append(f"# pip download --require-hashes --no-deps from {rest[0]}: {len(rest[1])} locked file(s)")
            elif kind in ("write", "append"):
                first = rest[1].splitlines()[0] if rest[1] else ""
                out.append(f"# {kind} {rest[0]} ({len(rest[1].splitlines())} line(s): {first[:60]}…)")
            else:
                out.append(f"# {kind} {' '.join(map(str, rest))}")
        return out
