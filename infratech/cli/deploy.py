"""``infratech preview|up|destroy|outputs``: thin wrappers over the Pulumi Automation API.

The Automation API drives the Pulumi CLI, which cannot be bundled in a Python package. Where it
is missing, :class:`PulumiCliMissing` says so in one line with how to install it.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from workloads.progress import Progress

from ..config import StackConfig
from ..policy.model import SECRET
from ..state import Backend, describe
from .backend import BackendError, ensure_bucket
from .stacks import Project, stack_config

INSTALL_HINT = "install it from https://www.pulumi.com/docs/install/ (e.g. `curl -fsSL https://get.pulumi.com | sh`)"


class PulumiCliMissing(Exception):
    def __init__(self, action: str):
        super().__init__(f"`infratech {action}` needs the Pulumi CLI, which is not on PATH; {INSTALL_HINT}")


class DeployError(Exception):
    """The Pulumi CLI ran and failed; its own message is what the user needs."""


def backend_for(project: Project, stack: str, cfg: Optional[StackConfig] = None) -> Backend:
    """The stack's state backend: PULUMI_BACKEND_URL when the deployer names one, else the stack's
    own (``state:``; by default a bucket of its provider and region)."""
    cfg = cfg or stack_config(project, stack)
    named = os.environ.get("PULUMI_BACKEND_URL")
    return describe(named, cfg.state.secrets_provider) if named else cfg.state_backend()


def _stack(project: Project, stack: str, action: str, api, backend: Backend, secrets_provider: str):
    secrets = None if secrets_provider == "passphrase" else secrets_provider
    opts = api.LocalWorkspaceOptions(env_vars={"PULUMI_BACKEND_URL": backend.url} if backend.url else None,
                                     secrets_provider=secrets)
    try:
        if action == "up":  # the first `up` creates the stack in the backend; later ones select it
            return api.create_or_select_stack(stack_name=stack, work_dir=str(project.root), opts=opts)
        return api.select_stack(stack_name=stack, work_dir=str(project.root), opts=opts)
    except api.errors.CommandError as exc:
        if "no stack named" in str(exc).lower() or "not found" in str(exc).lower():
            raise DeployError(f"stack {stack!r} does not exist in {backend.url or 'the default backend'} yet: "
                              f"`infratech up {stack}` creates it") from None
        raise DeployError(f"cannot select stack {stack!r} in {backend.url or 'the default backend'}: {exc}") from None


def _automation():
    from pulumi import automation  # the Pulumi CLI's driver, loaded only by the commands that deploy

    return automation


def require_pulumi_cli(action: str) -> None:
    """PulumiCliMissing, before anything is started or written, where the Pulumi CLI is not on PATH."""
    if shutil.which("pulumi") is None:
        raise PulumiCliMissing(action)


def open_stack(project: Project, stack: str, action: str, echo: Callable[[str], None] = print, api=None):
    """The stack in its state backend, ready for ``action``: the Pulumi CLI checked, the state
    bucket made ready (preview, up), the stack created on the first ``up``, selected otherwise.
    The plain deploy commands and the phases of a self-built cluster both come in here."""
    require_pulumi_cli(action)
    api = api or _automation()
    cfg = stack_config(project, stack)
    backend = backend_for(project, stack, cfg)
    if action in ("preview", "up"):
        try:
            ensure_bucket(backend, echo)
        except BackendError as exc:
            raise DeployError(str(exc)) from None
    return _stack(project, stack, action, api, backend, cfg.state.secrets_provider)


def log_file(project: Project, stack: str, action: str) -> Path:
    """Where a long command's tools write (Pulumi's and Ansible's own output): named on screen,
    kept after the run, readable by its owner only (build/logs/<stack>-<action>-<UTC time>.log)."""
    logs = project.root / "build" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{stack}-{action}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.log"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return path


class EngineProgress:
    """The Pulumi engine's events (Automation API ``on_event``) as progress: resources done, the
    one in flight, and at the end the summary's counts by operation (create, update, same, ...)."""

    def __init__(self, progress: Progress, phase: str):
        self.progress, self.phase = progress, phase

    def __call__(self, event) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            self.progress.update(note=f"{_op(meta.op)} {meta.urn.rsplit('::', 1)[-1]}")
        elif event.res_outputs_event is not None:
            self.progress.advance()
        elif event.summary_event is not None:
            self.progress.changed(f"{self.phase}: {changes_words(event.summary_event.resource_changes)}")


def _op(op) -> str:
    return str(getattr(op, "value", op))


def changes_words(changes) -> str:
    """``{create: 3, same: 40}`` -> ``3 create, 40 same`` (largest first: what moved, then what stayed)."""
    counts = sorted(((_op(k), int(v)) for k, v in (changes or {}).items() if v), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {k}" for k, n in counts) or "no change"


def run(project: Project, stack: str, action: str, echo: Callable[[str], None] = print, api=None,
        progress: Optional[Progress] = None) -> dict:
    """Run ``action`` (preview, up, destroy, outputs) on ``stack`` in its state backend (the
    bucket made ready first for preview and up); returns the stack outputs for ``up`` and
    ``outputs`` (secrets masked), an empty dict otherwise. ``api``: the Automation API module
    (tests pass a recorder). With ``progress``, the engine's events drive it (resources done, what
    changed) while ``echo`` takes Pulumi's own lines (the CLI sends them to a log file)."""
    api = api or _automation()
    st = open_stack(project, stack, action, echo, api)
    events = {"on_event": EngineProgress(progress, action)} if progress is not None else {}
    try:
        if action == "preview":
            st.preview(on_output=echo, **events)
        elif action == "up":
            return _masked(st.up(on_output=echo, **events).outputs)
        elif action == "destroy":
            st.destroy(on_output=echo, **events)
        elif action == "outputs":
            return _masked(st.outputs())
        else:
            raise ValueError(f"unknown action {action!r}")
    except api.errors.CommandError as exc:
        raise DeployError(str(exc)) from None
    return {}


def _masked(outputs) -> dict:
    return {k: SECRET if v.secret else v.value for k, v in sorted(outputs.items())}
