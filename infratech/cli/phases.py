"""``infratech up STACK [--phase NAME]`` for self-built clusters (``outscale``, ``baremetal``):
infrastructure -> bootstrap -> platform, each idempotent, each resumable.

    infratech up outscale-cloudgouv-a100                      # every phase not done yet, in order
    infratech up outscale-cloudgouv-a100 --phase bootstrap    # rerun one phase

- infrastructure: ``pulumi up`` of the program while the stack has no kubeconfig: network, VMs and
  flexible GPUs (nothing for bare metal), the join token (random, a secret output), the inventory.
- bootstrap: the node roles (``playbooks/site.yml``: servers, then GPU nodes) on the inventory made
  from the stack's outputs, then ``playbooks/fetch_kubeconfig.yml``; the kubeconfig's server is
  rewritten to the API endpoint and stored as the stack secret ``infratech:kubeconfig``. The join
  token reaches Ansible through the environment of the ansible-playbook process only (``RKE2_TOKEN``,
  which the inventory looks up): never a command line, a file left behind, or a log line.
  ``--node-vars FILE`` hands the node roles their site's settings (a YAML mapping passed as
  ``-e @FILE``: ``rke2_node_artifacts_dir``, a mirror of NVIDIA's repository, ...); it may not set
  the join token or the server URL, which come from the stack.
- platform: ``pulumi up`` again; with the kubeconfig a known config value the program declares the
  platform on it (a kubeconfig computed in the same run makes pulumi-kubernetes replace every
  platform object: pulumi/pulumi-kubernetes#4019, #1148).

Before an ``up`` on a bootstrapped cluster, hosts that leave the stack file are drained and deleted
from the cluster (and their RKE2 node-password secret removed, rancher/rke2#4852) while their
machines still run; a failure stops the run and keeps the machines.

On screen, ``workloads.progress`` shows the phase, its time, resources done (Pulumi) or playbooks
done and the task in flight (Ansible), then a summary of what changed; Pulumi's and Ansible's own
output goes to a log file named on screen (``build/logs/<stack>-up-<time>.log``), not between them.

Done means: the bootstrap has written the kubeconfig. Then infrastructure and bootstrap are skipped
on a rerun (the platform phase's ``up`` applies infrastructure changes as well); the platform's
``up`` always runs, and changes nothing when nothing changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol

import yaml
from pulumi import automation as auto

from workloads.progress import Progress

from ..config.common import NAMESPACE, SELF_BUILT_PROVIDERS
from ..exits import EXIT_BAD_INPUT, EXIT_TOOL
from . import deploy, inventory as _inventory
from .plan import record
from .stacks import Project, read_stack_config

PHASES = ("infrastructure", "bootstrap", "platform")
KUBECONFIG_KEY = f"{NAMESPACE}:kubeconfig"
PLAYBOOKS = ("playbooks/site.yml", "playbooks/fetch_kubeconfig.yml")
# what only the stack decides: a node-vars file setting them would override the inventory (-e wins)
STACK_OWNED_VARS = ("rke2_node_token", "rke2_node_server_url", "infratech_kubeconfig_dest")


class PhaseFailed(Exception):
    """A phase stopped the run; the message names it and what failed, never a secret."""

    def __init__(self, phase: str, reason: str):
        super().__init__(f"phase {phase} failed: {reason}")
        self.phase, self.reason = phase, reason


class Stack(Protocol):
    """What the runner needs of a Pulumi stack (the Automation API's, or a recorder in tests)."""

    def up(self, echo: Callable[[str], None]) -> None: ...
    def outputs(self) -> dict[str, tuple[object, bool]]: ...  # name -> (value, is_secret)
    def get_config(self, key: str) -> Optional[str]: ...
    def set_secret_config(self, key: str, value: str) -> None: ...


# ansible-playbook's argv, its extra environment, the working directory -> exit status
Ansible = Callable[[list[str], dict[str, str], Path], int]


def run_ansible(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    return subprocess.run(argv, env={**os.environ, **env}, cwd=cwd, check=False).returncode


TASK_LINE = re.compile(r"^TASK \[(?P<task>.*)\]")  # ansible-playbook's default callback: "TASK [role : name] ****"


def logged_ansible(log: Path, note: Callable[[str], None] = lambda _: None, poll_s: float = 1.0) -> Ansible:
    """ansible-playbook with its whole output appended to ``log`` (never on the terminal, where the
    progress is), and the task in flight handed to ``note`` while it runs."""

    def run(argv: list[str], env: dict[str, str], cwd: Path) -> int:
        with open(log, "ab") as fh:
            fh.write(("\n$ " + " ".join(argv) + "\n").encode())
            fh.flush()
            start = fh.tell()
            proc = subprocess.Popen(argv, env={**os.environ, "ANSIBLE_NOCOLOR": "1", **env}, cwd=cwd,
                                    stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
            while True:
                try:
                    return proc.wait(timeout=poll_s)
                except subprocess.TimeoutExpired:
                    task = _last_task(log, start)
                    if task:
                        note(task)

    return run


def _last_task(log: Path, start: int) -> Optional[str]:
    with open(log, "rb") as fh:
        fh.seek(max(start, os.path.getsize(log) - 65536))
        tail = fh.read().decode(errors="replace")
    found = [m.group("task") for m in map(TASK_LINE.match, tail.splitlines()) if m]
    return found[-1] if found else None


# kubectl's arguments, its extra environment -> exit status
Kubectl = Callable[[list[str], dict[str, str]], int]


def run_kubectl(argv: list[str], env: dict[str, str]) -> int:
    return subprocess.run(["kubectl", *argv], env={**os.environ, **env}, check=False).returncode


@dataclass
class Runner:
    project_root: Path
    stack_name: str
    stack: Stack
    ansible: Ansible = run_ansible
    echo: Callable[[str], None] = print
    kubectl: Kubectl = run_kubectl
    # the host names the stack file plans now (None: unknown, nothing is retired)
    planned_hosts: Callable[[], Optional[set[str]]] = lambda: None
    # the site's variables for the node roles (YAML mapping), passed as ``-e @FILE``
    node_vars: Optional[Path] = None
    ran: list[str] = field(default_factory=list)
    # where the phase, its time and done / total are shown (None: the echoed lines only)
    progress: Optional[Progress] = None

    def run(self, only: Optional[str] = None) -> list[str]:
        """Run the phases not done yet (or only ``only``); returns the phases that ran."""
        if only is not None and only not in PHASES:
            raise ValueError(f"unknown phase {only!r}; allowed: {', '.join(PHASES)}")
        for phase in PHASES:
            if only is not None and phase != only:
                continue
            if only is None and phase != "platform" and self._bootstrapped():
                self.echo(f"[{phase}] done already (the bootstrap wrote the kubeconfig): skipped")
                if self.progress:
                    self.progress.start(phase)
                    self.progress.end("skipped: done already (the bootstrap wrote the kubeconfig)")
                continue
            self.echo(f"[{phase}] running")
            if self.progress:
                self.progress.start(phase, total=len(PLAYBOOKS) if phase == "bootstrap" else None)
            try:
                getattr(self, f"_{phase}")()
            except PhaseFailed as exc:
                self._failed(exc.reason)
                raise
            except Exception as exc:  # the tool's own message, scrubbed of the stack's secrets
                failed = PhaseFailed(phase, self._scrub(f"{type(exc).__name__}: {exc}"))
                self._failed(failed.reason)
                raise failed from None
            self.ran.append(phase)
            self.echo(f"[{phase}] done")
            if self.progress:
                self.progress.end("done")
        return self.ran

    def _failed(self, reason: str) -> None:
        if self.progress and self.progress.current is not None:
            self.progress.end(f"failed: {reason}")

    def _bootstrapped(self) -> bool:
        return bool(self.stack.get_config(KUBECONFIG_KEY))

    # -- phases -----------------------------------------------------------------------------
    def _infrastructure(self) -> None:
        if self._bootstrapped():
            self._retire("infrastructure")
        self.stack.up(self._say)

    def _platform(self) -> None:
        if not self._bootstrapped():
            raise PhaseFailed("platform", f"no {KUBECONFIG_KEY} in the stack's config: run the bootstrap phase first")
        self._retire("platform")
        self.stack.up(self._say)

    def _retire(self, phase: str) -> None:
        """Nodes that leave the stack are drained and deleted from the cluster before the ``up``
        that deletes their machines, and their RKE2 node-password secret removed, so that a host
        that comes back under the same name can join again (rancher/rke2#4852)."""
        planned = self.planned_hosts()
        hosts = (self.stack.outputs().get("inventory", ({}, False))[0] or {}).get("hosts") or []
        leaving = [h["name"] for h in hosts if planned is not None and h.get("name") not in planned]
        if not leaving:
            return
        with tempfile.TemporaryDirectory(prefix="infratech-retire-") as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            fd = os.open(kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.stack.get_config(KUBECONFIG_KEY) or "")
            for name in leaving:
                self.echo(f"[{phase}] node {name} leaves the stack: drained and deleted from the cluster first")
                for argv in (["drain", name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=15m"],
                             ["delete", "node", name, "--ignore-not-found"],
                             ["-n", "kube-system", "delete", "secret", f"{name}.node-password.rke2", "--ignore-not-found"]):
                    status = self.kubectl(argv, {"KUBECONFIG": str(kubeconfig)})
                    if status != 0:
                        raise PhaseFailed(phase, f"kubectl {' '.join(argv[:2])} exited {status}; its machine is kept")

    def _bootstrap(self) -> None:
        outputs = self.stack.outputs()
        token, secret = outputs.get("join_token", (None, False))
        if not token or not secret:
            raise PhaseFailed("bootstrap", "the stack has no secret join_token output: run the infrastructure phase first")
        masked = {k: ("[secret]" if is_secret else v) for k, (v, is_secret) in outputs.items()}
        endpoint = (masked.get("inventory") or {}).get("api_endpoint")
        with tempfile.TemporaryDirectory(prefix="infratech-bootstrap-") as tmp:
            work = Path(tmp)
            inventory_file = work / "inventory.yml"
            inventory_file.write_text(_inventory.render(masked, self.stack_name), encoding="utf-8")
            kubeconfig_file = work / "kubeconfig"
            env = {"RKE2_TOKEN": str(token)}
            for done, playbook in enumerate(PLAYBOOKS):
                if self.progress:
                    self.progress.update(done=done, note=playbook)
                argv = ["ansible-playbook", "-i", str(inventory_file), playbook,
                        *(["-e", f"@{self.node_vars}"] if self.node_vars else []),
                        "-e", f"infratech_kubeconfig_dest={kubeconfig_file}"]
                status = self.ansible(argv, env, self.project_root)
                if status != 0:
                    raise PhaseFailed("bootstrap", f"ansible-playbook {playbook} exited {status}")
            if self.progress:
                self.progress.update(done=len(PLAYBOOKS))
                self.progress.changed(f"bootstrap: {len(PLAYBOOKS)} playbooks run; kubeconfig stored as {KUBECONFIG_KEY}")
            if not kubeconfig_file.is_file():
                raise PhaseFailed("bootstrap", "no kubeconfig was fetched from the first server")
            os.chmod(kubeconfig_file, 0o600)
            text = kubeconfig_file.read_text(encoding="utf-8")
        self.stack.set_secret_config(KUBECONFIG_KEY, rewrite_server(text, endpoint))

    # -- output -----------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        self.echo(self._scrub(line))

    def _scrub(self, text: str) -> str:
        try:
            secrets = [str(v) for v, is_secret in self.stack.outputs().values() if is_secret and v]
        except Exception:
            secrets = []
        for value in secrets:
            text = text.replace(value, "[secret]")
        return text


def rewrite_server(kubeconfig: str, endpoint: Optional[str]) -> str:
    """RKE2 writes ``server: https://127.0.0.1:6443``; clients need the API endpoint instead."""
    if not endpoint or endpoint == "[secret]":
        return kubeconfig
    return re.sub(r"(server:\s*https://)(127\.0\.0\.1|localhost)(:6443)", rf"\g<1>{endpoint}\g<3>", kubeconfig)


class AutomationStack:
    """The Automation API's stack behind the :class:`Stack` protocol (needs the Pulumi CLI). With
    ``progress``, the engine's events count resources done and what changed."""

    def __init__(self, stack, progress: Optional[Progress] = None):
        self._stack = stack
        self._progress = progress

    def up(self, echo: Callable[[str], None]) -> None:
        if self._progress is None:
            self._stack.up(on_output=echo)
            return
        phase = self._progress.current.name if self._progress.current else "up"
        self._stack.up(on_output=echo, on_event=deploy.EngineProgress(self._progress, phase))

    def outputs(self) -> dict[str, tuple[object, bool]]:
        return {k: (v.value, bool(v.secret)) for k, v in self._stack.outputs().items()}

    def get_config(self, key: str) -> Optional[str]:
        try:
            return self._stack.get_config(key).value
        except auto.errors.CommandError:
            return None

    def set_secret_config(self, key: str, value: str) -> None:
        self._stack.set_config(key, auto.ConfigValue(value=value, secret=True))


def check_node_vars(path: Path) -> Optional[str]:
    """Why ``--node-vars`` cannot be used (naming the file or the key), or None."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"--node-vars {path}: cannot be read ({exc.strerror or exc})"
    except yaml.YAMLError as exc:
        return f"--node-vars {path}: not YAML ({str(exc).splitlines()[0]})"
    if not isinstance(data, dict):
        return f"--node-vars {path}: must be a mapping of Ansible variables, got {type(data).__name__}"
    owned = [k for k in STACK_OWNED_VARS if k in data]
    if owned:
        return (f"--node-vars {path}: {', '.join(owned)} may not be set here: the join token and the server URL "
                "come from the stack's outputs (the token through the environment only)")
    return None


# -- the `infratech up` hook (infratech/cli/commands/deploy.py) ---------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("--phase", choices=PHASES, default=None,
                        help="self-built clusters (outscale, baremetal): rerun this phase only")
    parser.add_argument("--node-vars", type=Path, default=None, metavar="FILE",
                        help="self-built clusters: the node roles' site settings (YAML mapping, e.g. "
                             "rke2_node_artifacts_dir), passed to the bootstrap's playbooks as -e @FILE")


def _planned_hosts(project: Project, stack: str) -> set[str]:
    """The host names the stack file plans now (the offline plan's inventory)."""
    hosts = (record(project, stack).outputs.get("inventory") or {}).get("hosts") or []
    return {h["name"] for h in hosts}


def self_built(project: Project, stack: str) -> bool:
    config, _ = read_stack_config(project, stack)
    return config.get(f"{NAMESPACE}:provider") in SELF_BUILT_PROVIDERS


def runner_for(project: Project, stack: str, log: Path, echo: Callable[[str], None], progress: Progress,
               api=None, ansible: Optional[Ansible] = None, node_vars: Optional[Path] = None) -> Runner:
    """The runner ``infratech up`` and ``infratech e2e`` both use: the stack as deploy.py selects it
    (or creates it), so every path shares one way in. ``api``: the Automation API module (tests pass
    a recorder); ``ansible``: ansible-playbook with its output in ``log`` unless given; ``node_vars``:
    the site's variables for the node roles, checked by the caller (check_node_vars)."""
    return Runner(project.root, stack, AutomationStack(deploy.open_stack(project, stack, "up", echo, api), progress),
                  ansible=ansible or logged_ansible(log, note=lambda task: progress.update(note=task)), echo=echo,
                  kubectl=run_kubectl, planned_hosts=lambda: _planned_hosts(project, stack), progress=progress,
                  node_vars=node_vars)


def command(project: Project, stack: str, phase: Optional[str], node_vars: Optional[Path] = None) -> Optional[int]:
    """Run ``up`` in phases for a self-built stack; None for other stacks (a plain ``up``)."""
    if not self_built(project, stack):
        for flag, value in (("--phase", phase), ("--node-vars", node_vars)):
            if value is not None:
                print(f"error: {flag} applies to self-built clusters ({', '.join(SELF_BUILT_PROVIDERS)}) only", file=sys.stderr)
                return EXIT_BAD_INPUT
        return None
    if node_vars is not None:
        node_vars = node_vars.resolve()  # ansible-playbook runs in the project's root
        problem = check_node_vars(node_vars)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    log = deploy.log_file(project, stack, "up")
    progress = Progress(f"up {stack}")
    progress.log(f"Pulumi's and Ansible's output: {log}")
    with open(log, "a", encoding="utf-8") as fh:
        def echo(line: str) -> None:
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()

        runner = runner_for(project, stack, log, echo, progress, node_vars=node_vars)
        try:
            runner.run(phase)
        except PhaseFailed as exc:
            progress.summary()
            print(f"error: {exc} (the tools' output: {log})", file=sys.stderr)
            return EXIT_TOOL
    progress.summary()
    return 0
