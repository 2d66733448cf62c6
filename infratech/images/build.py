"""``make images``: the workload images, built with buildah from scratch (no registry image).

    python -m infratech.images build [--variant cpu|cuda] [train eval serve]

Layers, each committed with a fixed timestamp so that the same inputs give the same digests:
  1. base:  the debootstrap root filesystem (rootfs.py) and the numeric user       timestamp 0
  2. venv:  /opt/venv from the image's wheel lock (--require-hashes, no index)     timestamp 0
  3. code:  the tracked files of workloads/, bytecode compiled, config, annotations  commit time
Layers 1 and 2 are reused while their inputs (root filesystem, lock) are unchanged: a warm build
redoes layer 3 only. Outputs under build/images: images.lock (digests), <image>-<variant>.spdx.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import lock, registry, rootfs, sbom, spec

BUILD_LOCK = "images/build-requirements.lock"
BASE_REVISION = 2  # raise it when base_image() changes what it adds to the root filesystem  # pip itself, run from its wheel in the build steps


class BuildError(RuntimeError):
    """buildah or a build step failed."""


def sh(cmd: list[str], **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(cmd[:8])}` exited with {proc.returncode}: {(proc.stderr or proc.stdout)[-3000:]}")
    return proc.stdout.strip()


def image_exists(ref: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", ref], capture_output=True).returncode == 0


def inspect(ref: str) -> dict:
    return json.loads(sh(["buildah", "inspect", "--type", "image", ref]))


def labels(ref: str) -> dict:
    return inspect(ref)["OCIv1"]["config"].get("Labels") or {}


def digest(ref: str) -> str:
    return sh(["buildah", "inspect", "--type", "image", "--format", "{{.FromImageDigest}}", ref])


def commit(ctr: str, ref: str, timestamp: int) -> None:
    """Commit ``ctr`` as ``ref``; the image ``ref`` named before is removed unless still in use."""
    old = inspect(ref)["FromImageID"] if image_exists(ref) else None
    new = sh(["buildah", "commit", "--quiet", "--rm", "--identity-label=false", "--timestamp", str(timestamp), ctr, ref])
    if old and old != new:
        subprocess.run(["buildah", "rmi", old], capture_output=True)  # refused while a child image uses it


def run(ctr: str, command: list[str], volumes: tuple[str, ...] = ()) -> None:
    args = ["buildah", "run", "--isolation", "chroot", "--user", "0:0", "--env", "SOURCE_DATE_EPOCH=0"]
    for v in volumes:
        args += ["--volume", v]
    sh(args + [ctr, "--", *command])


def base_image(cache: Path, log) -> str:
    """Layer 1: the cached root filesystem plus the user, as an image (reused while unchanged)."""
    ref = f"{spec.LOCAL}/debian-base:{rootfs.SUITE}-{rootfs.cache_key()}-{BASE_REVISION}"
    if image_exists(ref):
        return ref
    tree = rootfs.ensure(cache, log=log)
    ctr = sh(["buildah", "from", "scratch"])
    mnt = Path(sh(["buildah", "mount", ctr]))
    sh(["cp", "-a", f"{tree}/.", f"{mnt}/"])
    # the user by hand, not useradd: useradd stamps today's date into /etc/shadow
    with open(mnt / "etc/passwd", "a") as fh:
        fh.write(f"{spec.USER}:x:{spec.UID}:{spec.UID}::{spec.WORKDIR}:/usr/sbin/nologin\n")
    with open(mnt / "etc/group", "a") as fh:
        fh.write(f"{spec.USER}:x:{spec.UID}:\n")
    with open(mnt / "etc/shadow", "a") as fh:
        fh.write(f"{spec.USER}:!:0::::::\n")
    # localhost resolves without a kubelet- or nspawn-written /etc/hosts (torchrun --standalone)
    (mnt / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    work = mnt / spec.WORKDIR.lstrip("/")
    work.mkdir()
    shutil.chown(work, spec.UID, spec.UID)
    sh(["buildah", "umount", ctr])
    commit(ctr, ref, 0)
    return ref


def venv_image(image: spec.Image, variant: str, parent: str, root: Path, out: Path, log) -> str:
    """Layer 2: the locked wheels in /opt/venv (only those the parent image lacks)."""
    lock_path = image.lock(root, variant)
    pins = lock.read(lock_path)
    ref = f"{spec.LOCAL}/{image.name}-venv:{variant}"
    key = lock.digest(lock_path)
    if image_exists(ref) and labels(ref).get("io.infratech.venv.key") == f"{key} {digest(parent)}":
        return ref
    have = {}
    if image.parent:
        have = {p.name: p for p in lock.read(spec.get(image.parent).lock(root, variant))}
        clash = [f"{p.name} {have[p.name].version} vs {p.version}" for p in pins
                 if p.name in have and have[p.name] != p]
        if clash:
            raise BuildError(f"{lock_path} differs from its parent image's lock: {', '.join(clash)}")
    todo = [p for p in pins if p.name not in have]
    tool = lock.read(root / BUILD_LOCK)
    wheels = out / "wheels"
    files = lock.wheelhouse(todo + tool, wheels, log=log)
    pip = f"/wheels/{files[tool[0]].name}/pip"
    # wheels first; then the few source archives, built with the venv's own setuptools (no index)
    passes = [[p for p in todo if files[p].name.endswith(".whl")], [p for p in todo if not files[p].name.endswith(".whl")]]
    ctr = sh(["buildah", "from", "--pull-never", parent])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not image.parent:
                run(ctr, ["/usr/bin/python3", "-m", "venv", "--without-pip", spec.VENV])
            for n, batch in enumerate(passes):
                if not batch:
                    continue
                Path(tmp, f"lock-{n}.txt").write_text("\n".join(p.line() for p in batch) + "\n")
                log(f"{image.name}: installing {len(batch)} locked {'wheel' if n == 0 else 'source archive'}(s)")
                run(ctr, [f"{spec.VENV}/bin/python", pip, "install", "--quiet", "--no-index", "--find-links", "/wheels",
                          "--require-hashes", "--no-deps", "--no-cache-dir", "--no-build-isolation",
                          "--disable-pip-version-check", "-r", f"/lock/lock-{n}.txt"],
                    volumes=(f"{wheels}:/wheels:ro", f"{tmp}:/lock:ro"))
        run(ctr, ["/bin/sh", "-c", "rm -rf /root/.cache /tmp/* /tmp/.[!.]*"])  # what a source build left
        sh(["buildah", "config", "--label", f"io.infratech.venv.key={key} {digest(parent)}", ctr])
        commit(ctr, ref, 0)
    except BaseException:  # leave no working container behind
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
        raise
    return ref


def git(root: Path, *args: str) -> str:
    return sh(["git", "-C", str(root), *args])


def final_image(image: spec.Image, variant: str, parent: str, root: Path) -> str:
    """Layer 3: the workloads package (tracked files only), config and annotations."""
    revision = git(root, "rev-parse", "HEAD")
    if git(root, "status", "--porcelain", "--untracked-files=no", "--", "workloads", "images"):
        revision += "-dirty"
    epoch = int(git(root, "log", "-1", "--format=%ct"))
    ctr = sh(["buildah", "from", "--pull-never", parent])
    try:
        mnt = Path(sh(["buildah", "mount", ctr]))
        if not image.parent:
            files = git(root, "ls-files", "-z", "workloads").split("\0")
            dest = mnt / spec.CODE.lstrip("/")
            for name in filter(None, files):
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / name, target)
                target.chmod(0o644 | (0o111 if (root / name).stat().st_mode & 0o100 else 0))
            sh(["buildah", "umount", ctr])
            run(ctr, [f"{spec.VENV}/bin/python", "-m", "compileall", "-q", spec.CODE])
        else:
            sh(["buildah", "umount", ctr])
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
        sh(args + ["--label", "io.infratech.venv.key-", ctr])
        ref = image.local_ref(variant)
        commit(ctr, ref, epoch)
    except BaseException:  # leave no working container behind
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
        raise
    return ref


def build(keys: list[str], variant: str, root: Path, out: Path, log=print) -> dict:
    """Build ``keys`` (parents first) and write images.lock and the SBOMs; returns the lock."""
    if shutil.which("buildah") is None:
        raise BuildError("buildah is not installed (apt-get install buildah)")
    order = []
    for key in keys:
        image = spec.get(key)
        if image.parent and image.parent not in order:
            order.append(image.parent)
        if key not in order:
            order.append(key)
    out.mkdir(parents=True, exist_ok=True)
    lock_file = out / "images.lock"
    result = {"images": {}}
    base = base_image(out / "rootfs", log)
    for key in order:
        image = spec.get(key)
        t = time.monotonic()
        parent = image.parent and spec.get(image.parent).local_ref(variant) or base
        venv = venv_image(image, variant, parent, root, out, log)
        ref = final_image(image, variant, venv, root)
        entry = {"image": image.name, "variant": variant, "ref": ref, "digest": digest(ref),
                 "lock": str(image.lock(root, variant).relative_to(root)),
                 "lock_digest": lock.digest(image.lock(root, variant)),
                 "revision": labels(ref)["org.opencontainers.image.revision"]}
        entry["size"] = sbom.write(ref, out / f"{image.name}-{variant}.spdx.json", entry)
        result = registry.record(lock_file, entry)
        log(f"{ref}@{entry['digest']}  {entry['size'] / 1e6:.0f} MB  {time.monotonic() - t:.0f}s")
    return result
