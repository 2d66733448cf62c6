"""``make images``: the workload images, built with buildah from scratch (no registry image).

    python -m infratech.images build [--variant cpu|cuda] [train eval serve]

Layers, each committed with a fixed timestamp so that the same inputs give the same digests:
  1. base:  the debootstrap root filesystem (rootfs.py) and the numeric user       timestamp 0
  2. venv:  /opt/venv from the image's wheel lock (--require-hashes, no index)     timestamp 0
  3. code:  the tracked files of workloads/, bytecode compiled, config, annotations  commit time
Layers 1 and 2 are reused while their inputs (root filesystem, lock) are unchanged: a warm build
redoes layer 3 only. Outputs under build/images: images.lock (digests), <image>-<variant>.spdx.json.
With ``--dry-run`` the same code writes the steps down instead (steps.py: Plan): nothing is built,
fetched or written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from . import lock, rootfs, spec
from .steps import Buildah, BuildError, Plan, sh

__all__ = ["BuildError", "Buildah", "Plan", "build"]

BUILD_LOCK = "images/build-requirements.lock"  # pip itself, run from its wheel in the build steps
BASE_REVISION = 2  # raise it when base_image() changes what it adds to the root filesystem


def run(b: Buildah, ctr: str, command: list[str], volumes: tuple[str, ...] = ()) -> None:
    args = ["buildah", "run", "--isolation", "chroot", "--user", "0:0", "--env", "SOURCE_DATE_EPOCH=0"]
    for v in volumes:
        args += ["--volume", v]
    b.sh(args + [ctr, "--", *command])


def base_image(b: Buildah, cache: Path, log) -> str:
    """Layer 1: the cached root filesystem plus the user, as an image (reused while unchanged)."""
    ref = f"{spec.LOCAL}/debian-base:{rootfs.SUITE}-{rootfs.cache_key()}-{BASE_REVISION}"
    if b.exists(ref):
        return ref
    tree = b.rootfs(cache, log)
    ctr = b.sh(["buildah", "from", "scratch"])
    mnt = Path(b.sh(["buildah", "mount", ctr]))
    b.sh(["cp", "-a", f"{tree}/.", f"{mnt}/"])
    # the user by hand, not useradd: useradd stamps today's date into /etc/shadow
    b.write(mnt / "etc/passwd", f"{spec.USER}:x:{spec.UID}:{spec.UID}::{spec.WORKDIR}:/usr/sbin/nologin\n", append=True)
    b.write(mnt / "etc/group", f"{spec.USER}:x:{spec.UID}:\n", append=True)
    b.write(mnt / "etc/shadow", f"{spec.USER}:!:0::::::\n", append=True)
    # localhost resolves without a kubelet- or nspawn-written /etc/hosts (torchrun --standalone)
    b.write(mnt / "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    b.mkdir(mnt / spec.WORKDIR.lstrip("/"), spec.UID)
    b.sh(["buildah", "umount", ctr])
    b.commit(ctr, ref, 0)
    return ref


def venv_image(b: Buildah, image: spec.Image, variant: str, parent: str, root: Path, out: Path, log) -> str:
    """Layer 2: the locked wheels in /opt/venv (only those the parent image lacks)."""
    lock_path = image.lock(root, variant)
    pins = lock.read(lock_path)
    ref = f"{spec.LOCAL}/{image.name}-venv:{variant}"
    key = lock.digest(lock_path)
    if b.exists(ref) and b.labels(ref).get("io.infratech.venv.key") == f"{key} {b.digest(parent)}":
        return ref
    have = {}
    if image.parent:
        have = {p.name: p for p in lock.read(spec.get(image.parent).lock(root, variant))}
        clash = lock.clashes(have.values(), pins)
        if clash:
            raise BuildError(f"{lock_path} differs from its parent image's lock: {', '.join(clash)}")
    todo = [p for p in pins if p.name not in have]
    tool = lock.read(root / BUILD_LOCK)
    wheels = out / "wheels"
    files = b.wheelhouse(todo + tool, wheels, log, spec.INDEX[variant])
    pip = f"/wheels/{files[tool[0]].name}/pip"
    # wheels first; then the few source archives, built with the venv's own setuptools (no index)
    passes = [[p for p in todo if files[p].name.endswith(".whl")], [p for p in todo if not files[p].name.endswith(".whl")]]
    ctr = b.sh(["buildah", "from", "--pull-never", parent])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not image.parent:
                run(b, ctr, ["/usr/bin/python3", "-m", "venv", "--without-pip", spec.VENV])
            for n, batch in enumerate(passes):
                if not batch:
                    continue
                b.write(Path(tmp, f"lock-{n}.txt"), "\n".join(p.line() for p in batch) + "\n")
                log(f"{image.name}: installing {len(batch)} locked {'wheel' if n == 0 else 'source archive'}(s)")
                run(b, ctr, [f"{spec.VENV}/bin/python", pip, "install", "--quiet", "--no-index", "--find-links", "/wheels",
                             "--require-hashes", "--no-deps", "--no-cache-dir", "--no-build-isolation",
                             "--disable-pip-version-check", "-r", f"/lock/lock-{n}.txt"],
                    volumes=(f"{wheels}:/wheels:ro", f"{tmp}:/lock:ro"))
        run(b, ctr, ["/bin/sh", "-c", "rm -rf /root/.cache /tmp/* /tmp/.[!.]*"])  # what a source build left
        b.sh(["buildah", "config", "--label", f"io.infratech.venv.key={key} {b.digest(parent)}", ctr])
        b.commit(ctr, ref, 0)
    except BaseException:  # leave no working container behind
        b.discard(ctr)
        raise
    return ref


def inspect(ref: str) -> dict:
    """buildah's description of the local image ``ref``."""
    return Buildah().inspect(ref)


def git(root: Path, *args: str) -> str:
    return sh(["git", "-C", str(root), *args])


def final_image(b: Buildah, image: spec.Image, variant: str, parent: str, root: Path) -> tuple[str, dict[str, str]]:
    """Layer 3: the workloads package (tracked files only), config and annotations; the image's
    reference and its annotations."""
    revision = git(root, "rev-parse", "HEAD")
    if git(root, "status", "--porcelain", "--untracked-files=no", "--", "workloads", "images"):
        revision += "-dirty"
    epoch = int(git(root, "log", "-1", "--format=%ct"))
    ctr = b.sh(["buildah", "from", "--pull-never", parent])
    try:
        mnt = Path(b.sh(["buildah", "mount", ctr]))
        if not image.parent:
            files = git(root, "ls-files", "-z", "workloads").split("\0")
            dest = mnt / spec.CODE.lstrip("/")
            for name in filter(None, files):
                b.copy(root / name, dest / name, 0o644 | (0o111 if (root / name).stat().st_mode & 0o100 else 0))
            b.sh(["buildah", "umount", ctr])
            run(b, ctr, [f"{spec.VENV}/bin/python", "-m", "compileall", "-q", spec.CODE])
        else:
            b.sh(["buildah", "umount", ctr])
        lock_path = image.lock(root, variant)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
        notes = {
            "org.opencontainers.image.title": image.name,
            "org.opencontainers.image.description": image.description,
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.source": "https://github.com/infratech-souveraine/infratech",
            "io.infratech.variant": variant,
            "io.infratech.lock": str(lock_path.relative_to(root)),
            "io.infratech.lock.digest": lock.digest(lock_path),
        }
        args = ["buildah", "config", "--user", f"{spec.UID}:{spec.UID}", "--workingdir", spec.WORKDIR,
                "--cmd", json.dumps(list(image.cmd)), "--entrypoint", "[]"]
        for k, v in spec.ENV.items():
            args += ["--env", f"{k}={v}"]
        for k, v in notes.items():
            args += ["--annotation", f"{k}={v}", "--label", f"{k}={v}"]
        b.sh(args + ["--label", "io.infratech.venv.key-", ctr])
        ref = image.local_ref(variant)
        b.commit(ctr, ref, epoch)
    except BaseException:  # leave no working container behind
        b.discard(ctr)
        raise
    return ref, notes


def build(keys: list[str], variant: str, root: Path, out: Path, log=print, b: Buildah | None = None) -> dict:
    """Build ``keys`` (parents first) and write images.lock and the SBOMs; returns the entries
    built. With ``b=Plan()`` nothing is done: ``b.steps`` holds what the build would do."""
    b = b or Buildah()
    if not b.dry_run and shutil.which("buildah") is None:
        raise BuildError("buildah is not installed (apt-get install buildah)")
    order = []
    for key in keys:
        image = spec.get(key)
        if image.parent and image.parent not in order:
            order.append(image.parent)
        if key not in order:
            order.append(key)
    if not b.dry_run:
        out.mkdir(parents=True, exist_ok=True)
    result: dict = {"images": {}}
    base = base_image(b, out / "rootfs", log)
    for key in order:
        image = spec.get(key)
        t = time.monotonic()
        parent = image.parent and spec.get(image.parent).local_ref(variant) or base
        venv = venv_image(b, image, variant, parent, root, out, log)
        ref, notes = final_image(b, image, variant, venv, root)
        entry = {"image": image.name, "variant": variant, "ref": ref, "digest": b.digest(ref),
                 "lock": notes["io.infratech.lock"], "lock_digest": notes["io.infratech.lock.digest"],
                 "revision": notes["org.opencontainers.image.revision"]}
        entry["size"] = b.sbom(ref, out / f"{image.name}-{variant}.spdx.json", entry)
        b.record(out / "images.lock", entry)
        result["images"][f"{image.name}:{variant}"] = entry
        if not b.dry_run:
            log(f"{ref}@{entry['digest']}  {entry['size'] / 1e6:.0f} MB  {time.monotonic() - t:.0f}s")
    return result
