"""The bootstrap phase of a self-built cluster on booted hosts: three systemd-nspawn Debian 12 hosts
(tests/roles/roles_harness.py) stand in for the servers of the shipped ``baremetal-onprem`` stack,
whose stack file is recorded offline with its addresses replaced by theirs (1 server, 2 H100 agents).

The bootstrap runs through :class:`infratech.cli.phases.Runner` with the real ``run_ansible``: the
inventory rendered from the stack's outputs, ``playbooks/site.yml`` then ``fetch_kubeconfig.yml``,
the token in the ansible-playbook process's environment only. What is replaced, and named so:

- the Automation API's stack (no Pulumi CLI here): :class:`StackDouble` holds the recorded outputs
  and the join token a real ``up`` would have generated, and keeps the config the bootstrap writes;
- NVIDIA's repository, the kernel headers and RKE2's release: tests/roles/standins.py, passed to the
  playbooks as a ``--node-vars`` file, as a user passes their own artifacts directory.

Used by tests/cluster/conftest.py and benchmarks/bootstrap.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import string
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import roles_harness as harness
import standins
import yaml

from infratech.cli import phases
from infratech.cli.plan import record
from infratech.cli.stacks import Project

ROOT = harness.ROOT
STACK = "baremetal-onprem"
# host -> pool of the stack file; the system pool's host is the RKE2 server, the others are agents
HOSTS = {"cp-1": "system", "h100-1": "h100", "h100-2": "h100"}
PREPARE = ROOT / "tests/roles/playbooks/prepare.yml"
RKE2_INSTALL_TASK = "TASK [rke2_node : Ensure RKE2 is installed at"


def new_token() -> str:
    """A join token shaped as the provider's RandomPassword makes it (48 letters and digits)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(48))


def stack_outputs(project, fleet: harness.Fleet, workdir: Path) -> dict:
    """The offline plan's outputs of the shipped stack file, its hosts replaced by the fleet's."""
    data = yaml.safe_load(project.stack_file(STACK).read_text(encoding="utf-8"))
    config = data["config"]
    config["infratech:baremetal"]["ssh_user"] = "root"
    for pool in config["infratech:pools"]:
        members = [name for name, p in HOSTS.items() if p == pool["name"]]
        assert members, f"pool {pool['name']} of {STACK} has no test host"
        # the server keeps its name from the stack file; agents take the default <pool>-<n>
        pool["hosts"] = [{"address": fleet.hosts[n].ip, **({"name": n} if pool["role"] == "system" else {})}
                         for n in members]
    stack_dir = workdir / "stacks"
    stack_dir.mkdir(parents=True, exist_ok=True)
    (stack_dir / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    outputs = record(Project(root=project.root, name=project.name, stack_dir=stack_dir, main=project.main), STACK).outputs
    names = {h["name"] for h in outputs["inventory"]["hosts"]}
    assert names == set(HOSTS), f"the stack's inventory names {sorted(names)}, the fleet {sorted(HOSTS)}"
    return outputs


class StackDouble:
    """TEST DOUBLE of the Automation API's stack (no Pulumi CLI here): the outputs of the recorded
    plan with the join token a real ``up`` generates as a secret; keeps the config it is given."""

    def __init__(self, outputs: dict, token: str):
        self._outputs = {k: (v, False) for k, v in outputs.items() if k != "join_token"}
        self._outputs["join_token"] = (token, True)
        self.config: dict[str, str] = {}

    def up(self, echo):
        raise AssertionError("the bootstrap phase never runs pulumi up")

    def outputs(self):
        return dict(self._outputs)

    def get_config(self, key):
        return self.config.get(key)

    def set_secret_config(self, key, value):
        self.config[key] = value


def ansible_environ(fleet: harness.Fleet, workdir: Path) -> dict[str, str]:
    """What the operator's shell holds for ansible-playbook: the SSH key of the hosts, a fact cache
    and a log file (the product passes its own environment on, adding the token)."""
    return {
        "PATH": f"{harness.ANSIBLE_BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_PRIVATE_KEY_FILE": str(fleet.key),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_SSH_COMMON_ARGS": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts"),
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }


def write_node_vars(path: Path, repo_port: int, rke2_artifacts: Path, report_dir: Path) -> Path:
    """The ``--node-vars`` file: the roles pointed at the TEST DOUBLES; each host reaches this
    machine (the repository server) through its default gateway."""
    data = {**standins.role_vars(repo_port, rke2_artifacts, report_dir),
            "test_controller_address": "{{ ansible_default_ipv4.gateway }}"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def prepare(fleet: harness.Fleet, workdir: Path, repo_port: int, rke2_artifacts: Path, report_dir: Path) -> None:
    """What the test hosts need beside the roles (tests/roles/playbooks/prepare.yml)."""
    inv = fleet.inventory(workdir / "prepare-hosts.yml", groups={"test_hosts": list(HOSTS)},
                          group_vars={"test_hosts": standins.role_vars(repo_port, rke2_artifacts, report_dir)})
    res = harness.run_playbook(PREPARE, inv, workdir / "prepare-facts")
    assert res.rc == 0, res.output[-4000:]


@dataclass
class Run:
    """One bootstrap: what the runner said, ansible-playbook's output and log, the argv it was
    given, the command lines seen while it ran, and how it ended."""

    ran: list[str]
    error: Optional[str]
    echo: list[str]
    output: str
    log: str
    argv: list[list[str]]
    cmdlines: set[str]
    seconds: float
    killed: bool = False

    def recaps(self) -> list[dict[str, dict[str, int]]]:
        """PLAY RECAP counters per host, one mapping per playbook run."""
        return [harness.PlayResult(0, "PLAY RECAP" + part, 0).recap() for part in self.output.split("PLAY RECAP")[1:]]


@dataclass
class Site:
    """The booted hosts with the stack they stand for."""

    fleet: harness.Fleet
    workdir: Path
    outputs: dict
    token: str
    stack: StackDouble
    node_vars: Path
    environ: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    def bootstrap(self, kill_after_first_rke2_install: bool = False) -> Run:
        """``infratech up --phase bootstrap`` through the product's Runner and run_ansible."""
        n = len(self.runs)
        out_file, log_file = self.workdir / f"run-{n}.out", self.workdir / f"run-{n}.log"
        built: list[list[str]] = []

        def ansible(argv, env, cwd):
            built.append(list(argv))
            return phases.run_ansible(argv, env, cwd)

        echo: list[str] = []
        runner = phases.Runner(ROOT, STACK, self.stack, ansible=ansible, echo=echo.append, node_vars=self.node_vars)
        seen = CmdlineSampler()
        killer = Killer(log_file) if kill_after_first_rke2_install else None
        error = None
        start = time.monotonic()
        with _environ({**self.environ, "ANSIBLE_LOG_PATH": str(log_file)}), _fds_to(out_file), seen:
            if killer:
                killer.start()
            try:
                runner.run("bootstrap")
            except phases.PhaseFailed as exc:
                error = str(exc)
            finally:
                if killer:
                    killer.stop()
        run = Run(ran=list(runner.ran), error=error, echo=echo, output=out_file.read_text(errors="replace"),
                  log=log_file.read_text(errors="replace") if log_file.exists() else "", argv=built,
                  cmdlines=seen.cmdlines, seconds=time.monotonic() - start, killed=bool(killer and killer.killed))
        self.runs.append(run)
        return run


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _fds_to(path: Path):
    """ansible-playbook's stdout and stderr (inherited from this process) into a file."""
    with open(path, "w") as fh:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process of this machine (the hosts' included)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out[int(entry.name)] = (ppid, cmdline)
    return out


class CmdlineSampler:
    """Collects every command line of the machine (``ps``) while the bootstrap runs."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.cmdlines, self._stop = interval, set(), threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.is_set():
            self.cmdlines.update(cmd for _, cmd in _processes().values())
            self._stop.wait(self.interval)


class Killer:
    """SIGKILLs the ansible-playbook process (and the workers it forked) once the Ansible log shows
    the first host's RKE2 installed: the rest of the fleet has not been reached yet."""

    def __init__(self, log: Path):
        self.log, self.killed, self._stop = log, False, threading.Event()

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        in_task = False
        offset = 0
        while not self._stop.is_set() and not self.killed:
            if self.log.exists():
                with open(self.log, errors="replace") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                    offset = fh.tell()
                for line in chunk.splitlines():
                    if RKE2_INSTALL_TASK in line:
                        in_task = True
                    elif in_task and ("changed: [" in line or "ok: [" in line):
                        self._kill()
                        return
            self._stop.wait(0.1)

    def _kill(self):
        procs = _processes()
        me = os.getpid()
        roots = [pid for pid, (ppid, cmd) in procs.items() if ppid == me and "ansible-playbook" in cmd]
        tree, todo = set(), list(roots)
        while todo:
            pid = todo.pop()
            tree.add(pid)
            todo += [p for p, (pp, _) in procs.items() if pp == pid and p not in tree]
        for pid in roots + sorted(tree - set(roots)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.killed = bool(roots)
