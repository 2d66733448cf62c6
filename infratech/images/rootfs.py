"""The Debian root filesystem every image starts from: made once with ``debootstrap`` from this
machine's own apt mirror (never a hard-coded host) and cached under ``build/images/rootfs``, the
way tests/roles caches the root filesystem of its hosts.

Files that record when or where debootstrap ran (logs, apt lists, caches, machine-id) are removed,
so that the layer holds only what the packages installed.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"
# Debian's python3 (3.11, the cp311 wheels of the locks) and TLS roots for object storage; the
# wheels bring their own compiled libraries. libnuma1: vLLM's CPU build links it. g++: torch's
# inductor compiles C++ against Python.h (python3-dev) at run time (vLLM's CPU engine always;
# torch.compile in training), and
# triton builds its launcher with the C compiler on GPUs.
PACKAGES = ("python3", "python3-dev", "ca-certificates", "libnuma1", "g++")
# paths (relative, globbed) that differ from one debootstrap run to the next and serve no purpose
VOLATILE = (
    "var/log/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*",
    "var/cache/ldconfig/aux-cache", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
    "var/lib/dpkg/available", "etc/machine-id", "var/lib/dbus/machine-id", "etc/*-", "root/.bash_history",
)


class RootfsError(RuntimeError):
    """debootstrap could not make the root filesystem (no Debian mirror, no network, not root)."""


def debian_mirrors(suite: str = SUITE, sources: Path = Path("/etc/apt")) -> tuple[str, str | None]:
    """(main mirror, security mirror) for ``suite`` from this machine's apt sources."""
    entries: list[tuple[str, str]] = []
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list")),
             *sorted((sources / "sources.list.d").glob("*.sources"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", stanza, flags=re.MULTILINE))
                if fields.get("Enabled", "yes").lower() == "no" or "deb" not in fields.get("Types", "").split():
                    continue
                for uri in fields.get("URIs", "").split():
                    entries += [(uri, s) for s in fields.get("Suites", "").split()]
        else:
            for line in text.splitlines():
                m = re.match(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    entries.append((m.group(1), m.group(2)))
    main = next((u for u, s in entries if s == suite), None)
    security = next((u for u, s in entries if s == f"{suite}-security"), None)
    if main is None:
        raise RootfsError(f"no apt source of this machine serves Debian {suite!r} (/etc/apt/sources.list*)")
    return main.rstrip("/"), security.rstrip("/") if security else None


def cache_key() -> str:
    return hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]


def ensure(cache: Path, log=print) -> Path:
    """The cached root filesystem, made with debootstrap when missing (locked against parallel runs)."""
    cache.mkdir(parents=True, exist_ok=True)
    rootfs = cache / f"{SUITE}-{cache_key()}"
    stamp = cache / f"{rootfs.name}.complete"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and rootfs.is_dir():
            return rootfs
        if shutil.which("debootstrap") is None:
            raise RootfsError("debootstrap is not installed (apt-get install debootstrap)")
        mirror, security = debian_mirrors()
        tmp = cache / f"{rootfs.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"debootstrap {SUITE} from {mirror} into {tmp}")
        proc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
                               str(tmp), mirror], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RootfsError(f"debootstrap exited with {proc.returncode}: {proc.stderr[-2000:] or proc.stdout[-2000:]}")
        lines = [f"deb {mirror} {SUITE} main", f"deb {mirror} {SUITE}-updates main"]
        if security:
            lines.append(f"deb {security} {SUITE}-security main")
        (tmp / "etc/apt/sources.list").write_text("\n".join(lines) + "\n")
        for pattern in VOLATILE:
            for path in tmp.glob(pattern):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        (tmp / "etc/machine-id").write_text("")
        tmp.rename(rootfs)
        stamp.write_text("complete\n")
        return rootfs
