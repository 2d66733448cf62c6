"""TEST DOUBLES for what cannot be downloaded here: NVIDIA's apt repository, the running kernel's
headers and RKE2's release artifacts. The packages carry the real names, versions and dependency
shape, so the roles' own code paths (signed repository, pinning, holds, install, services, checksums,
unpacking) run unchanged, and what the real ones refuse, these refuse too:

- the driver metapackage pulls libraries that depend on each other at the *exact* version, in two
  branches (580 pinned, 590 newer): a pin that misses one library breaks apt as on a real node;
- the kernel-module support package depends on ``nvidia-support``, which Debian ships only in
  ``contrib``: a node without contrib cannot install the driver;
- the DKMS packages build (a stand-in file) only when the running kernel's headers are installed, and
  again when headers are installed later (/etc/kernel/header_postinst.d), like DKMS;
- ``rke2`` checks the CIS profile's kernel parameters at start like RKE2 does, and a joining node
  reports ready only once it reaches its server (``SupervisorStandIn`` is a reachable one).

Their contents are stand-ins that say so in every description and file. Nothing here is NVIDIA's,
Debian's or Rancher's software.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import socketserver
import subprocess
import tarfile
import threading
from pathlib import Path

DRIVER_VERSIONS = ["580.95.05-1", "590.44.01-1"]  # the pinned branch, and a newer one the pin must refuse
TOOLKIT_VERSIONS = ["1.17.8-1", "1.18.0-1"]
DCGM_VERSION = "1:4.4.1-1"
RKE2_VERSION = "v1.33.5+rke2r1"
REPO_PATH = "cuda/repos/debian12/x86_64"
# Debian's archive has the headers of Debian's kernels; the test hosts run this machine's kernel, so
# a second stand-in repository serves headers for it (prepare.yml lists it on the hosts).
KERNEL_REPO_PATH = "debian-kernel-headers"
KERNEL_RELEASE = os.uname().release
HEADERS_METAPACKAGE = "linux-headers-infratech-test-double"
KEY_NAME = "infratech-test-double.asc"
NOTE = "TEST DOUBLE built by tests/roles/standins.py: not NVIDIA software, contains no driver"
# What the stand-in DKMS "builds" when headers are there (a text file, not a module).
DKMS_MODULE = "/lib/modules/{kver}/updates/dkms/nvidia.ko"
# The stand-in nvidia-persistenced writes the persistence mode it runs with here; the stand-in
# nvidia-smi (tests/roles/fixtures/bin) reports it.
PERSISTENCE_STATE = "/run/infratech-test-double/persistence-mode"

SLEEP_SERVICE = """[Unit]
Description={desc} (TEST DOUBLE: sleeps, stands in for NVIDIA's daemon)

[Service]
Type=simple
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

# Ubuntu's unit as NVIDIA's packages ship it there: --no-persistence-mode turns the mode off.
# https://github.com/NVIDIA/ansible-role-nvidia-driver files/nvidia-persistenced-override.conf exists for it.
PERSISTENCED_SERVICE = """[Unit]
Description=NVIDIA Persistence Daemon (TEST DOUBLE)
Wants=syslog.target

[Service]
Type=forking
ExecStart=/usr/bin/nvidia-persistenced --user nvidia-persistenced --no-persistence-mode --verbose
ExecStopPost=/bin/rm -rf /var/run/nvidia-persistenced

[Install]
WantedBy=multi-user.target
"""

PERSISTENCED = """#!/bin/sh
# TEST DOUBLE of nvidia-persistenced (tests/roles/standins.py): records the persistence mode it was
# started with (Disabled with --no-persistence-mode, as the real daemon) and stays in the background.
mode=Enabled
for arg in "$@"; do [ "$arg" = --no-persistence-mode ] && mode=Disabled; done
mkdir -p "$(dirname {state})"
echo "$mode" > {state}
sleep infinity >/dev/null 2>&1 &
exit 0
""".format(state=PERSISTENCE_STATE)

DKMS_BUILD = """#!/bin/sh
# TEST DOUBLE of a DKMS build (tests/roles/standins.py): like DKMS, nothing is built for a kernel
# whose headers are not installed (/lib/modules/<kernel>/build), and the package still installs.
kver="${{1:-$(uname -r)}}"
if [ ! -e "/lib/modules/$kver/build/Makefile" ]; then
  echo "Module build for kernel $kver was skipped since the kernel headers for this kernel do not seem to be installed."
  exit 0
fi
mkdir -p "/lib/modules/$kver/updates/dkms"
echo "TEST DOUBLE: stands in for nvidia.ko {version} built by DKMS" > "/lib/modules/$kver/updates/dkms/nvidia.ko"
"""

# what Debian's linux-headers-* postinst does: run the hooks DKMS installs, for this kernel
HEADERS_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /etc/kernel/header_postinst.d ]; then
  run-parts --report --exit-on-error --arg={kver} /etc/kernel/header_postinst.d
fi
"""

NV_HOSTENGINE = """#!/bin/sh
# TEST DOUBLE of nv-hostengine (tests/roles/standins.py): the DCGM host engine dcgmi talks to.
exec sleep infinity
"""

# NVIDIA DCGM's unit name and command (https://docs.nvidia.com/datacenter/dcgm/latest/installation.html)
DCGM_SERVICE = """[Unit]
Description=NVIDIA DCGM service (TEST DOUBLE)

[Service]
Type=simple
ExecStart=/usr/bin/nv-hostengine -n --service-account nvidia-dcgm
Restart=on-abort

[Install]
WantedBy=multi-user.target
"""

DCGMI = """#!/bin/sh
# TEST DOUBLE of dcgmi (tests/roles/standins.py): prints the recorded `dcgmi diag -r 1 -j` of
# /etc/infratech-test-double/dcgmi-diag.json; exits 226 when it failed, like dcgmi. Like dcgmi it
# needs the host engine (service nvidia-dcgm) running.
if ! systemctl is-active --quiet nvidia-dcgm; then
  echo "Error: unable to establish a connection to the specified host: localhost" >&2
  echo "Error: Unable to connect to host engine. Host engine connection invalid/disconnected." >&2
  exit 255
fi
cat /etc/infratech-test-double/dcgmi-diag.json
grep -q '"Fail"' /etc/infratech-test-double/dcgmi-diag.json && exit 226
exit 0
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
         description: str = "", source: str = "", scripts: dict | None = None, links: dict | None = None) -> Path:
    root = out_dir / "build" / f"{name}_{version}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    for rel, (content, mode) in (files or {}).items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.chmod(path, mode)
    for rel, target in (links or {}).items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    for script, content in (scripts or {}).items():
        (root / "DEBIAN" / script).write_text(content)
        os.chmod(root / "DEBIAN" / script, 0o755)
    control = [f"Package: {name}", f"Version: {version}", "Architecture: amd64", "Maintainer: InfraTech tests <tests@invalid>",
               "Section: misc", "Priority: optional"]
    if source:
        control.append(f"Source: {source}")
    if depends:
        control.append("Depends: " + ", ".join(depends))
    control.append(f"Description: {description or name} ({NOTE})")
    (root / "DEBIAN/control").write_text("\n".join(control) + "\n")
    deb = out_dir / f"{name}_{version.split(':')[-1]}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def _driver_branch(repo: Path, v: str) -> None:
    """One driver branch with the shape of NVIDIA's Debian 12 packages (source nvidia-graphics-drivers)."""
    src = "nvidia-graphics-drivers"
    # the libraries the meta packages pull, each requiring its siblings at exactly this version
    for lib in ("libglx-nvidia0", "libegl-nvidia0", "libgl1-nvidia-glvnd-glx", "libnvcuvid1", "libcuda1"):
        _deb(repo, lib, v, source=src, description=f"NVIDIA {lib}")
    _deb(repo, "nvidia-driver-libs", v,
         [f"libglx-nvidia0 (= {v})", f"libgl1-nvidia-glvnd-glx (= {v})", f"libegl-nvidia0 (= {v})"], source=src)
    # nvidia-support is in Debian's contrib only (bookworm: contrib/misc)
    _deb(repo, "nvidia-kernel-support", v, ["nvidia-support"], source=src, description="NVIDIA kernel module support files")
    dkms = {"scripts": {"postinst": "#!/bin/sh\nset -e\n/usr/lib/infratech-test-double/nvidia-dkms-build \"$(uname -r)\"\n"},
            "files": {"/usr/lib/infratech-test-double/nvidia-dkms-build": (DKMS_BUILD.format(version=v), 0o755),
                      # the hook DKMS runs when headers for another kernel are installed later
                      "/etc/kernel/header_postinst.d/infratech-test-double-nvidia-dkms":
                          ('#!/bin/sh\nexec /usr/lib/infratech-test-double/nvidia-dkms-build "$1"\n', 0o755)}}
    _deb(repo, "nvidia-kernel-open-dkms", v, [f"nvidia-kernel-support (= {v})"], source=src,
         description="NVIDIA open kernel modules (DKMS)", **dkms)
    _deb(repo, "nvidia-kernel-dkms", v, [f"nvidia-kernel-support (= {v})"], source=src,
         description="NVIDIA proprietary kernel modules (DKMS)", **dkms)
    _deb(repo, "nvidia-driver", v, [f"nvidia-driver-libs (= {v})", f"libcuda1 (= {v})", f"libnvcuvid1 (= {v})"], source=src)
    _deb(repo, "nvidia-open", v, [f"nvidia-driver (= {v})", f"nvidia-kernel-open-dkms (= {v})"],
         description="NVIDIA driver, open modules")
    _deb(repo, "cuda-drivers", v, [f"nvidia-driver (= {v})", f"nvidia-kernel-dkms (= {v})"], description="NVIDIA driver")
    _deb(repo, "nvidia-persistenced", v, files={
        "/usr/bin/nvidia-persistenced": (PERSISTENCED, 0o755),
        "/usr/lib/systemd/system/nvidia-persistenced.service": (PERSISTENCED_SERVICE, 0o644)})
    _deb(repo, "nvidia-fabricmanager", v, files={
        "/usr/lib/systemd/system/nvidia-fabricmanager.service": (SLEEP_SERVICE.format(desc="NVIDIA Fabric Manager"), 0o644)})


def _index(repo: Path, label: str) -> None:
    subprocess.run(["rm", "-rf", str(repo / "build")], check=True)
    packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo, check=True, capture_output=True).stdout
    (repo / "Packages").write_bytes(packages)
    release = subprocess.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=infratech-test-double",
         "-o", f"APT::FTPArchive::Release::Label={label}", "release", "."],
        cwd=repo, check=True, capture_output=True).stdout
    (repo / "Release").write_bytes(release)


def build_kernel_headers_repo(root: Path) -> Path:
    """A flat repository with stand-in headers of the running kernel, and a metapackage pulling them."""
    repo = root / KERNEL_REPO_PATH
    repo.mkdir(parents=True, exist_ok=True)
    kver = KERNEL_RELEASE
    _deb(repo, f"linux-headers-{kver}", "1.0-1", source="linux", description=f"Header files for Linux {kver}",
         files={f"/usr/src/linux-headers-{kver}/Makefile": (f"# TEST DOUBLE: headers of {kver}\n", 0o644)},
         links={f"/lib/modules/{kver}/build": f"/usr/src/linux-headers-{kver}"},
         scripts={"postinst": HEADERS_POSTINST.format(kver=kver)})
    _deb(repo, HEADERS_METAPACKAGE, "1.0-1", [f"linux-headers-{kver}"], source="linux",
         description="Header files for the running kernel flavour (metapackage)")
    _index(repo, "TEST DOUBLE of Debian's kernel headers")
    return root


def build_nvidia_repo(root: Path) -> Path:
    """A signed flat apt repository laid out like NVIDIA's CUDA repository; returns the web root."""
    repo = root / REPO_PATH
    repo.mkdir(parents=True, exist_ok=True)
    for v in DRIVER_VERSIONS:
        _driver_branch(repo, v)
    for v in TOOLKIT_VERSIONS:
        _deb(repo, "libnvidia-container1", v)
        _deb(repo, "libnvidia-container-tools", v, [f"libnvidia-container1 (= {v})"])
        _deb(repo, "nvidia-container-toolkit-base", v, files={
            "/usr/bin/nvidia-ctk": (NVIDIA_CTK, 0o755), "/usr/bin/nvidia-container-runtime": (RUNTIME, 0o755)})
        _deb(repo, "nvidia-container-toolkit", v, [f"nvidia-container-toolkit-base (= {v})", f"libnvidia-container-tools (= {v})"])
    _deb(repo, "datacenter-gpu-manager-4-core", DCGM_VERSION, description="NVIDIA DCGM core", files={
        "/usr/bin/dcgmi": (DCGMI, 0o755), "/usr/bin/nv-hostengine": (NV_HOSTENGINE, 0o755),
        "/usr/lib/systemd/system/nvidia-dcgm.service": (DCGM_SERVICE, 0o644)})
    for cuda in ("12", "13"):
        _deb(repo, f"datacenter-gpu-manager-4-cuda{cuda}", DCGM_VERSION, [f"datacenter-gpu-manager-4-core (= {DCGM_VERSION})"],
             description=f"NVIDIA DCGM for CUDA {cuda}")
    _index(repo, "TEST DOUBLE of NVIDIA CUDA")
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
# TEST DOUBLE of rke2 (tests/roles/standins.py): answers --version; as a service it first checks what
# RKE2 checks at start (rancher/rke2 v1.33.5+rke2r1 pkg/cli/cmds/profile_linux.go validateProfile):
# the profile is "cis", "etcd" or empty; with "cis" the kernel parameters must already have the CIS
# values; a server needs the etcd user and group. A server then writes its kubeconfig (a stand-in
# with no real key). Then it tells systemd it is ready, and sleeps.
config=/etc/rancher/rke2/config.yaml
fatal() {{ echo "level=fatal msg=\\"$*\\"" >&2; exit 1; }}
# The kernel's value of a parameter. A container cannot write vm.* or kernel.*: the sysctl test
# double (tests/roles/fixtures/bin/sysctl) records what was loaded, and that is the kernel here.
param() {{
  v=$(sed -n "s/^$1=//p" /var/lib/infratech-test-double/kernel-sysctl 2>/dev/null | tail -n 1)
  [ -n "$v" ] || v=$(cat "/proc/sys/$(echo "$1" | tr . /)")
  echo "$v"
}}
case "$1" in
  --version|-v) echo "rke2 version {version} (TEST DOUBLE)"; echo "go version go1.24 (stand-in)";;
  server|agent)
    profile=$(sed -n 's/^profile:[[:space:]]*//p' "$config" 2>/dev/null | tr -d "\\"'")
    case "$profile" in
      "") echo 'level=warning msg="not running in CIS mode"' >&2;;
      cis|etcd) ;;
      *) fatal "invalid value provided for --profile flag";;
    esac
    if [ "$profile" = cis ]; then
      errors=""
      for kv in vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1; do
        key=${{kv%=*}}; want=${{kv#*=}}; have=$(param "$key")
        [ "$have" = "$want" ] || errors="$errors invalid kernel parameter value $key=$have - expected $want"
      done
      [ -z "$errors" ] || fatal "$errors"
    fi
    if [ -n "$profile" ] && [ "$1" = server ]; then
      getent passwd etcd >/dev/null || fatal "missing required: user: unknown user etcd"
      getent group etcd >/dev/null || fatal "missing required: group: unknown group etcd"
    fi
    # containerd 2 (RKE2 v1.33): config-v3.toml.tmpl first, else config.toml.tmpl with the version 2 base
    # (k3s pkg/agent/containerd/config.go templateGenerations); the stand-in "renders" the file it picked
    dir=/var/lib/rancher/rke2/agent/etc/containerd
    if [ -f "$dir/config-v3.toml.tmpl" ]; then tmpl="$dir/config-v3.toml.tmpl"; version=3
    elif [ -f "$dir/config.toml.tmpl" ]; then tmpl="$dir/config.toml.tmpl"; version=2
    else tmpl=""; version=3; fi
    mkdir -p "$dir"
    {{ echo "version = $version"; echo "# TEST DOUBLE: rendered by the stand-in rke2 from ${{tmpl:-its base template}}"
       [ -z "$tmpl" ] || grep -v '^{{{{' "$tmpl"; }} > "$dir/config.toml"
    [ -z "$tmpl" ] || echo "level=info msg=\\"Using containerd config template at $tmpl\\"" >&2
    # A server writes the admin kubeconfig for https://127.0.0.1:6443 to /etc/rancher/rke2/rke2.yaml, in
    # write-kubeconfig-mode (docs.rke2.io cluster_access; rancher/rke2 tests/e2e rewrite 127.0.0.1 in it)
    if [ "$1" = server ]; then
      kmode=$(sed -n 's/^write-kubeconfig-mode:[[:space:]]*//p' "$config" 2>/dev/null | tr -d "\\"'")
      (umask 077; printf '%s\\n' 'apiVersion: v1' 'clusters:' '- cluster:' \\
        '    certificate-authority-data: VEVTVCBET1VCTEU=' '    server: https://127.0.0.1:6443' '  name: default' \\
        'contexts:' '- context:' '    cluster: default' '    user: default' '  name: default' \\
        'current-context: default' 'kind: Config' 'preferences: {{}}' 'users:' '- name: default' '  user:' \\
        '    client-certificate-data: VEVTVCBET1VCTEU=' '    client-key-data: VEVTVCBET1VCTEU=' \\
        > /etc/rancher/rke2/rke2.yaml)
      [ -z "$kmode" ] || chmod "$kmode" /etc/rancher/rke2/rke2.yaml
    fi
    # A joining node (server: in its config) reports ready only once it has reached its server; until
    # then RKE2 logs "Waiting to retrieve agent configuration; server is not ready" and retries forever
    # (k3s pkg/agent/config/config.go). Type=notify: READY=1 from the main process itself (a child's
    # message can arrive after it exited).
    server=$(sed -n 's/^server:[[:space:]]*//p' "$config" 2>/dev/null | tr -d "\\"'")
    exec python3 -c 'import os, socket, sys, time, urllib.parse
server, role = sys.argv[1], sys.argv[2]
if role == "server":
    # a server serves its supervisor port, which joining nodes reach first (docs.rke2.io: 9345/tcp)
    supervisor = socket.create_server(("0.0.0.0", 9345))
if server:
    url = urllib.parse.urlsplit(server)
    while True:
        try:
            socket.create_connection((url.hostname, url.port), timeout=5).close()
            break
        except OSError as exc:
            print(f"level=info msg=\\"Waiting to retrieve agent configuration; server is not ready: {{exc}}\\"", file=sys.stderr, flush=True)
            time.sleep(5)
addr = os.environ.get("NOTIFY_SOCKET", "")
if addr:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("\\0" + addr[1:] if addr.startswith("@") else addr)
    s.send(b"READY=1")
while True:
    time.sleep(3600)' "$server" "$1"
    ;;
  *) echo "rke2 test double: $*" >&2;;
esac
"""

# The unit's start semantics as RKE2 ships them (rancher/rke2 v1.33.5+rke2r1
# bundle/lib/systemd/system/rke2-agent.service): Type=notify, no start timeout, restart always.
RKE2_UNIT = """[Unit]
Description=Rancher Kubernetes Engine v2 ({kind}) (TEST DOUBLE)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/rke2 {kind}

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


def role_vars(repo_port: int, rke2_artifacts: Path, report_dir: Path) -> dict:
    """Variables pointing the roles at these TEST DOUBLES (everything else is the roles' defaults);
    ``test_controller_address`` is the host's gateway, an address of this machine."""
    url = "http://{{ test_controller_address }}:%d/%s/" % (repo_port, REPO_PATH)
    return {
        "nvidia_driver_repo_url": url,
        "nvidia_driver_repo_key_url": url + KEY_NAME,
        # the stand-in kernel's release has no distribution flavour to derive the metapackage from
        "nvidia_driver_kernel_headers_metapackage": HEADERS_METAPACKAGE,
        "test_kernel_headers_repo_url": "http://{{ test_controller_address }}:%d/%s/" % (repo_port, KERNEL_REPO_PATH),
        "nvidia_container_toolkit_version": "1.18.0-1",
        "nvidia_container_toolkit_cdi": "always",
        "rke2_node_artifacts_dir": str(rke2_artifacts),
        "rke2_node_version": RKE2_VERSION,
        "gpu_health_kubectl": "/usr/local/bin/kubectl",
        "gpu_health_kube_host": "{{ inventory_hostname }}",
        "gpu_health_controller_report_dir": str(report_dir),
    }


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


class SupervisorStandIn:
    """TEST DOUBLE of an RKE2 server's supervisor port (9345/tcp): accepts connections and closes them,
    which is all the stand-in rke2 agent and the role's bounded wait ask of a reachable server."""

    def __init__(self):
        self.server = socketserver.ThreadingTCPServer(("0.0.0.0", 0), socketserver.BaseRequestHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
