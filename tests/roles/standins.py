"""TEST DOUBLES for what cannot be downloaded here: NVIDIA's apt repository and RKE2's release
artifacts. The packages carry the real names and versions, so the roles' own code paths (signed
repository, pinning, holds, install, services, checksums, unpacking) run unchanged; their contents are
stand-ins that say so in every description and file. Nothing here is NVIDIA's or Rancher's software.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path

DRIVER_VERSIONS = ["580.95.05-1", "590.44.01-1"]  # the pinned branch, and a newer one the pin must refuse
TOOLKIT_VERSIONS = ["1.17.8-1", "1.18.0-1"]
RKE2_VERSION = "v1.33.5+rke2r1"
REPO_PATH = "cuda/repos/debian12/x86_64"
KEY_NAME = "infratech-test-double.asc"
NOTE = "TEST DOUBLE built by tests/roles/standins.py: not NVIDIA software, contains no driver"

SLEEP_SERVICE = """[Unit]
Description={desc} (TEST DOUBLE: sleeps, stands in for NVIDIA's daemon)

[Service]
Type=simple
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

NVIDIA_CTK = """#!/bin/sh
# TEST DOUBLE of nvidia-ctk (tests/roles/standins.py): writes a fixed CDI specification.
for arg in "$@"; do case "$arg" in --output=*) out="${arg#--output=}";; esac; done
if [ "$1 $2" = "cdi generate" ]; then
  printf 'cdiVersion: 0.5.0\\nkind: nvidia.com/gpu\\n# TEST DOUBLE: no real device\\ndevices:\\n  - name: all\\n    containerEdits: {}\\n' > "${out:-/dev/stdout}"
  exit 0
fi
echo "nvidia-ctk test double: $*" >&2
"""

RUNTIME = "#!/bin/sh\n# TEST DOUBLE of nvidia-container-runtime: hands over to runc.\nexec runc \"$@\"\n"


def _deb(out_dir: Path, name: str, version: str, depends: list[str] = (), files: dict | None = None,
         description: str = "") -> Path:
    root = out_dir / "build" / f"{name}_{version}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    for rel, (content, mode) in (files or {}).items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.chmod(path, mode)
    control = [f"Package: {name}", f"Version: {version}", "Architecture: amd64", "Maintainer: InfraTech tests <tests@invalid>",
               "Section: misc", "Priority: optional"]
    if depends:
        control.append("Depends: " + ", ".join(depends))
    control.append(f"Description: {description or name} ({NOTE})")
    (root / "DEBIAN/control").write_text("\n".join(control) + "\n")
    deb = out_dir / f"{name}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def build_nvidia_repo(root: Path) -> Path:
    """A signed flat apt repository laid out like NVIDIA's CUDA repository; returns the web root."""
    repo = root / REPO_PATH
    repo.mkdir(parents=True, exist_ok=True)
    for v in DRIVER_VERSIONS:
        _deb(repo, "nvidia-kernel-open-dkms", v, description="NVIDIA open kernel modules")
        _deb(repo, "nvidia-kernel-dkms", v, description="NVIDIA proprietary kernel modules")
        _deb(repo, "nvidia-open", v, [f"nvidia-kernel-open-dkms (= {v})"], description="NVIDIA driver, open modules")
        _deb(repo, "cuda-drivers", v, [f"nvidia-kernel-dkms (= {v})"], description="NVIDIA driver")
        _deb(repo, "nvidia-persistenced", v, files={
            "/usr/lib/systemd/system/nvidia-persistenced.service": (SLEEP_SERVICE.format(desc="NVIDIA Persistence Daemon"), 0o644)})
        _deb(repo, "nvidia-fabricmanager", v, files={
            "/usr/lib/systemd/system/nvidia-fabricmanager.service": (SLEEP_SERVICE.format(desc="NVIDIA Fabric Manager"), 0o644)})
    for v in TOOLKIT_VERSIONS:
        _deb(repo, "libnvidia-container1", v)
        _deb(repo, "libnvidia-container-tools", v, [f"libnvidia-container1 (= {v})"])
        _deb(repo, "nvidia-container-toolkit-base", v, files={
            "/usr/bin/nvidia-ctk": (NVIDIA_CTK, 0o755), "/usr/bin/nvidia-container-runtime": (RUNTIME, 0o755)})
        _deb(repo, "nvidia-container-toolkit", v, [f"nvidia-container-toolkit-base (= {v})", f"libnvidia-container-tools (= {v})"])
    subprocess.run(["rm", "-rf", str(repo / "build")], check=True)
    packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo, check=True, capture_output=True).stdout
    (repo / "Packages").write_bytes(packages)
    release = subprocess.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=infratech-test-double",
         "-o", "APT::FTPArchive::Release::Label=TEST DOUBLE of NVIDIA CUDA", "release", "."],
        cwd=repo, check=True, capture_output=True).stdout
    (repo / "Release").write_bytes(release)
    gnupg = root / ".gnupg"
    gnupg.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    gpg = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run(gpg + ["--quick-gen-key", "InfraTech test double repository <tests@invalid>", "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True)
    subprocess.run(gpg + ["--clearsign", "-o", str(repo / "InRelease"), str(repo / "Release")], env=env, check=True, capture_output=True)
    subprocess.run(gpg + ["-abs", "-o", str(repo / "Release.gpg"), str(repo / "Release")], env=env, check=True, capture_output=True)
    key = subprocess.run(gpg + ["--armor", "--export"], env=env, check=True, capture_output=True).stdout
    (repo / KEY_NAME).write_bytes(key)
    # gpg started an agent for the throw-away keyring: stop it, or it outlives the test run
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)
    return root


RKE2_BIN = """#!/bin/sh
# TEST DOUBLE of rke2 (tests/roles/standins.py): answers --version and otherwise sleeps like a service.
case "$1" in
  --version|-v) echo "rke2 version {version} (TEST DOUBLE)"; echo "go version go1.24 (stand-in)";;
  server|agent) exec sleep infinity;;
  *) echo "rke2 test double: $*" >&2;;
esac
"""

RKE2_UNIT = """[Unit]
Description=Rancher Kubernetes Engine v2 ({kind}) (TEST DOUBLE)
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
ExecStart=/usr/local/bin/rke2 {kind}
Restart=always

[Install]
WantedBy=multi-user.target
"""


def build_rke2_artifacts(out: Path, corrupt: bool = False) -> Path:
    """rke2.linux-amd64.tar.gz, rke2-images.linux-amd64.tar.zst, sha256sum-amd64.txt (stand-ins)."""
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, content, mode):
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
        add("bin/rke2", RKE2_BIN.format(version=RKE2_VERSION), 0o755)
        add("lib/systemd/system/rke2-server.service", RKE2_UNIT.format(kind="server"), 0o644)
        add("lib/systemd/system/rke2-agent.service", RKE2_UNIT.format(kind="agent"), 0o644)
        add("share/rke2/TEST-DOUBLE", "stand-in RKE2 release built by tests/roles/standins.py\n", 0o644)
    (out / "rke2.linux-amd64.tar.gz").write_bytes(buf.getvalue())
    (out / "rke2-images.linux-amd64.tar.zst").write_bytes(b"TEST DOUBLE: stand-in for RKE2's air-gap image archive\n" * 64)
    lines = []
    for name in ("rke2-images.linux-amd64.tar.zst", "rke2.linux-amd64.tar.gz"):
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
        if corrupt and name.endswith(".tar.gz"):
            digest = "0" * 64
        lines.append(f"{digest}  {name}")
    (out / "sha256sum-amd64.txt").write_text("\n".join(lines) + "\n")
    return out


class RepoServer:
    """Serves a directory over HTTP on every address of this machine (hosts reach it via their gateway)."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
