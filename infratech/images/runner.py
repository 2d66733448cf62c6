"""Run a command in a built image the way a restricted pod would: the image's numeric user, its
environment and working directory, a read-only root filesystem, a fresh /tmp, nothing else
writable but the directories bound in.

``podman run`` cannot start containers on machines where crun may not set rlimits, so the image's
root filesystem is mounted with buildah and started with ``systemd-nspawn`` (root needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path


class RunError(RuntimeError):
    """The image is missing or systemd-nspawn is not there."""


def config(ref: str) -> dict:
    proc = subprocess.run(["buildah", "inspect", "--type", "image", ref], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunError(f"image {ref} not found (make images builds it): {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)["OCIv1"]["config"]


def nspawn_command(mnt: Path, cfg: dict, command: list[str], binds=(), env: dict | None = None) -> list[str]:
    user = cfg.get("User") or "0"
    machine = f"infratech-{mnt.parent.name[:12]}"
    # the host name resolves, as in a pod's kubelet-written /etc/hosts (torchrun's workers reach
    # their agent's store by it); written in the container's throw-away layer
    hosts = mnt / "etc/hosts"
    hosts.write_text((hosts.read_text() if hosts.is_file() else "127.0.0.1\tlocalhost\n") + f"127.0.1.1\t{machine}\n")
    cmd = ["systemd-nspawn", "--quiet", "--register=no", "--as-pid2", f"--directory={mnt}", "--read-only",
           f"--machine={machine}", f"--hostname={machine}",
           "--tmpfs=/tmp:mode=1777", f"--user={user.split(':')[0]}", f"--chdir={cfg.get('WorkingDir') or '/'}",
           "--resolv-conf=off", "--timezone=off", "--link-journal=no"]
    if not Path("/run/systemd/system").exists() or os.environ.get("INVOCATION_ID"):
        cmd.append("--keep-unit")
    for item in list(cfg.get("Env") or []) + [f"{k}={v}" for k, v in (env or {}).items()]:
        cmd.append(f"--setenv={item}")
    for bind in binds:  # the mount point, in the container's own throw-away layer (as the kubelet does)
        (mnt / bind.split(":")[1].lstrip("/")).mkdir(parents=True, exist_ok=True)
        cmd.append(f"--bind={bind}")
    return cmd + ["--", *(command or cfg.get("Cmd") or [])]


def run_in_image(ref: str, command: list[str], binds=(), env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run ``command`` (default: the image's Cmd) in ``ref``; keyword arguments go to subprocess.run."""
    if shutil.which("systemd-nspawn") is None:
        raise RunError("systemd-nspawn is not installed (apt-get install systemd-container)")
    cfg = config(ref)
    ctr = subprocess.run(["buildah", "from", "--pull-never", ref], capture_output=True, text=True, check=True).stdout.strip()
    try:
        mnt = Path(subprocess.run(["buildah", "mount", ctr], capture_output=True, text=True, check=True).stdout.strip())
        # systemd-nspawn makes the descriptors it is given non-blocking: never hand it the caller's
        # stdin, which later programs (ansible-playbook refuses a non-blocking stdin) share
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(nspawn_command(mnt, cfg, command, binds, env), **kw)
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
