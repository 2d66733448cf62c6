"""Real Debian 12 hosts for the role tests: debootstrap root filesystem (cached), one overlay per
host, ``systemd-nspawn -b`` in its own network namespace, reached over SSH with a generated key.

Nothing here mocks Ansible: playbooks run with ``ansible-playbook`` against booted systemd hosts.
Used by tests/roles/conftest.py and benchmarks/roles_converge.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infratech.images.rootfs import RootfsError, debian_mirrors  # the one reader of this machine's apt sources

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("INFRATECH_ROLES_CACHE", ROOT / "build" / "roles-cache"))
SUITE = "bookworm"
# What every host needs before Ansible can manage it (the roles install the rest themselves).
ROOTFS_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt",
    "iproute2", "ca-certificates", "procps", "kmod",
]
ANSIBLE_BIN = Path(os.environ.get("INFRATECH_ANSIBLE_BIN", ROOT / ".venv" / "bin"))
NAT_TABLE = "infratech_roles_harness"


def _run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def skip_reason() -> str | None:
    """Why the host tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "host tests need root (debootstrap, systemd-nspawn, ip netns)"
    for tool in ("debootstrap", "systemd-nspawn", "ip", "ssh", "ssh-keygen", "nft", "dpkg-deb", "apt-ftparchive", "gpg"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash .ci/run installs the harness packages)"
    if not (ANSIBLE_BIN / "ansible-playbook").exists():
        return f"ansible-playbook not found in {ANSIBLE_BIN} (pip install -e '.[roles]')"
    try:
        debian_mirrors(SUITE)
    except RootfsError as exc:
        return str(exc)
    return None


def ensure_rootfs() -> Path:
    """The cached Debian root filesystem, made once with debootstrap (locked against parallel runs)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE / f"{SUITE}-rootfs"
    stamp = rootfs / ".infratech-complete"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return rootfs
        shutil.rmtree(rootfs, ignore_errors=True)
        mirror, security = debian_mirrors(SUITE)
        tmp = CACHE / f"{SUITE}-rootfs.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(ROOTFS_PACKAGES)}", SUITE, str(tmp), mirror])
        lines = [f"deb {mirror} {SUITE} main", f"deb {mirror} {SUITE}-updates main"]
        if security:
            lines.append(f"deb {security} {SUITE}-security main")
        (tmp / "etc/apt/sources.list").write_text("\n".join(lines) + "\n")
        (tmp / "etc/machine-id").write_text("")
        # no serial getty on the container console: the boot log stays readable
        for unit in ("console-getty.service", "getty@tty1.service"):
            link = tmp / "etc/systemd/system" / unit
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to("/dev/null")
        _run(["chroot", str(tmp), "apt-get", "clean"])
        tmp.rename(rootfs)
        stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        return rootfs


@dataclass
class Host:
    name: str
    index: int
    subnet: int
    workdir: Path
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def ip(self) -> str:
        return f"10.{self.subnet}.{self.index}.2"

    @property
    def gateway(self) -> str:
        return f"10.{self.subnet}.{self.index}.1"

    @property
    def netns(self) -> str:
        return f"itr{self.subnet}-{self.name}"

    @property
    def veth(self) -> str:
        return f"it{self.subnet}h{self.index}"

    @property
    def merged(self) -> Path:
        return self.workdir / "merged"


@dataclass
class Fleet:
    """N booted hosts. ``with Fleet(names, workdir) as fleet:`` boots them, then tears them down."""

    names: list[str]
    workdir: Path
    subnet: int | None = None  # 10.<subnet>.0.0/16; None picks a free one (runs may overlap)
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.key = self.workdir / "id_ed25519"

    # -- lifecycle --
    def __enter__(self) -> Fleet:
        try:
            self.boot()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def _claim_subnet(self):
        """A 10.X.0.0/16 no other fleet (another test run, a benchmark) or interface uses, held by a lock."""
        lock_dir = Path("/run/infratech-roles-harness")
        lock_dir.mkdir(parents=True, exist_ok=True)
        used = _run(["ip", "-o", "addr"]).stdout + _run(["ip", "netns", "list"]).stdout
        candidates = [self.subnet] if self.subnet else range(200, 251)
        for x in candidates:
            if f" 10.{x}." in used or f"itr{x}-" in used:
                continue
            lock = open(lock_dir / f"{x}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self.subnet, self._lock = x, lock
            return
        raise RuntimeError("no free 10.X.0.0/16 for the test hosts")

    def boot(self):
        rootfs = ensure_rootfs()
        self._claim_subnet()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "infratech-role-tests", "-f", str(self.key)])
        self._nat(True)
        for i, name in enumerate(self.names, start=1):
            host = Host(name=name, index=i, subnet=self.subnet, workdir=self.workdir / name)
            self.hosts[name] = host
            self._start(host, rootfs)
        for host in self.hosts.values():
            self._wait_ready(host)

    def _start(self, host: Host, rootfs: Path):
        for sub in ("upper", "work", "merged"):
            (host.workdir / sub).mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "overlay", "overlay", "-o",
              f"lowerdir={rootfs},upperdir={host.workdir / 'upper'},workdir={host.workdir / 'work'}", str(host.merged)])
        ssh_dir = host.merged / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        (host.merged / "etc/hostname").write_text(host.name + "\n")
        (host.merged / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {host.name}\n")
        _run(["ip", "netns", "add", host.netns])
        _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
        _run(["ip", "addr", "add", f"{host.gateway}/24", "dev", host.veth])
        _run(["ip", "link", "set", host.veth, "up"])
        for cmd in (["addr", "add", f"{host.ip}/24", "dev", "eth0"], ["link", "set", "eth0", "up"],
                    ["link", "set", "lo", "up"], ["route", "add", "default", "via", host.gateway]):
            _run(["ip", "-n", host.netns, *cmd])
        host.log = host.workdir / "console.log"
        keep_unit = ["--keep-unit"] if not Path("/run/systemd/system").exists() or os.environ.get("INVOCATION_ID") else []
        host.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", "--quiet", f"--directory={host.merged}", f"--machine={host.netns}",
             "--register=no", *keep_unit, f"--network-namespace-path=/run/netns/{host.netns}",
             # its own network namespace: managing its firewall and sysctls touches nothing of this machine
             "--capability=CAP_NET_ADMIN",
             "--console=read-only", "--resolv-conf=copy-host", "--timezone=off"],
            stdout=open(host.log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def _wait_ready(self, host: Host, timeout: float = 120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if host.proc.poll() is not None:
                raise RuntimeError(f"{host.name} exited while booting:\n{host.log.read_text()[-3000:]}")
            try:
                socket.create_connection((host.ip, 22), timeout=2).close()
                res = self.ssh(host.name, "systemctl is-system-running --wait", check=False, timeout=60)
                if res.stdout.strip() in ("running", "degraded"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{host.name} not reachable over SSH after {timeout}s:\n{host.log.read_text()[-3000:]}")

    def shutdown(self):
        for host in self.hosts.values():
            if host.proc is not None and host.proc.poll() is None:
                host.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        for host in self.hosts.values():
            if host.proc is not None:
                try:
                    host.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    host.proc.kill()
                    host.proc.wait()
            _run(["umount", "--lazy", str(host.merged)], check=False)
            _run(["ip", "link", "del", host.veth], check=False)
            _run(["ip", "netns", "del", host.netns], check=False)
            shutil.rmtree(host.workdir, ignore_errors=True)
        if self.subnet is not None:
            self._nat(False)
        if getattr(self, "_lock", None):
            self._lock.close()

    def _nat(self, on: bool):
        _run(["nft", "delete", "table", "ip", f"{NAT_TABLE}_{self.subnet}"], check=False)
        if on:
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
            rules = (f"table ip {NAT_TABLE}_{self.subnet} {{\n chain post {{ type nat hook postrouting priority 100;"
                     f" ip saddr 10.{self.subnet}.0.0/16 ip daddr != 10.{self.subnet}.0.0/16 masquerade; }}\n}}\n")
            subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)

    # -- access --
    def ssh_args(self) -> list[str]:
        return ["-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"]

    def ssh(self, name: str, command: str, check=True, timeout=120):
        return _run(["ssh", *self.ssh_args(), f"root@{self.hosts[name].ip}", command], check=check, timeout=timeout)

    def inventory(self, path: Path, groups: dict[str, list[str]], host_vars: dict | None = None,
                  group_vars: dict | None = None) -> Path:
        """An Ansible YAML inventory of these hosts."""
        common = " ".join(a for a in self.ssh_args() if a not in ("-i", str(self.key)))
        hosts = {}
        for name, host in self.hosts.items():
            hosts[name] = {
                "ansible_host": host.ip, "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": common,
                "ansible_python_interpreter": "/usr/bin/python3",
                "test_controller_address": host.gateway,
                **(host_vars or {}).get(name, {}),
            }
        children = {g: {"hosts": {h: None for h in members}} for g, members in groups.items()}
        for g, v in (group_vars or {}).items():
            children.setdefault(g, {"hosts": {}})["vars"] = v
        data = {"all": {"hosts": hosts, "children": children}}
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@dataclass
class PlayResult:
    rc: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counters per host."""
        out = {}
        for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", self.output, flags=re.MULTILINE):
            out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        return out

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported a change (for messages when idempotence fails)."""
        tasks, current = [], None
        for line in self.output.splitlines():
            m = re.match(r"^(TASK|RUNNING HANDLER) \[(.*)\]", line)
            if m:
                current = m.group(2)
            elif line.startswith("changed:") and current:
                tasks.append(current)
        return tasks


def ansible_env(fact_cache: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(fact_cache),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "PATH": f"{ANSIBLE_BIN}:{env.get('PATH', '')}",
    })
    env.update(extra or {})
    return env


def playbook_cmd(playbook: Path, inventory: Path, extra_vars: dict | None = None, check=False, limit=None) -> list[str]:
    cmd = [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if limit:
        cmd += ["--limit", limit]
    return cmd


def run_playbook(playbook: Path, inventory: Path, fact_cache: Path, extra_vars=None, check=False, limit=None,
                 timeout=1200, env=None) -> PlayResult:
    start = time.monotonic()
    proc = subprocess.run(playbook_cmd(playbook, inventory, extra_vars, check, limit), text=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, timeout=timeout,
                          env=ansible_env(fact_cache, env))
    return PlayResult(proc.returncode, proc.stdout, time.monotonic() - start)


def infra_host(fleet: Fleet, name: str):
    """A testinfra host for one booted host, over SSH with the fleet's key."""
    import testinfra

    return testinfra.get_host(f"ssh://root@{fleet.hosts[name].ip}", ssh_extra_args=" ".join(fleet.ssh_args()))
