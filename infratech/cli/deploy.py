"""``infratech preview|up|destroy|outputs``: thin wrappers over the Pulumi Automation API.

The Automation API drives the Pulumi CLI, which cannot be bundled in a Python package. Where it
is missing, :class:`PulumiCliMissing` says so in one line with how to install it.
"""

from __future__ import annotations

import shutil
from typing import Callable

from ..policy.model import SECRET
from .stacks import Project

INSTALL_HINT = "install it from https://www.pulumi.com/docs/install/ (e.g. `curl -fsSL https://get.pulumi.com | sh`)"


class PulumiCliMissing(Exception):
    def __init__(self, action: str):
        super().__init__(f"`infratech {action}` needs the Pulumi CLI, which is not on PATH; {INSTALL_HINT}")


class DeployError(Exception):
    """The Pulumi CLI ran and failed; its own message is what the user needs."""


def _stack(project: Project, stack: str, action: str):
    if shutil.which("pulumi") is None:
        raise PulumiCliMissing(action)
    from pulumi import automation as auto

    try:
        return auto.select_stack(stack_name=stack, work_dir=str(project.root))
    except auto.errors.CommandError as exc:
        raise DeployError(f"cannot select stack {stack!r}: {exc}") from None


def run(project: Project, stack: str, action: str, echo: Callable[[str], None] = print) -> dict:
    """Run ``action`` (preview, up, destroy, outputs) on ``stack``; returns the stack outputs
    for ``up`` and ``outputs`` (secrets masked), an empty dict otherwise."""
    from pulumi import automation as auto

    st = _stack(project, stack, action)
    try:
        if action == "preview":
            st.preview(on_output=echo)
        elif action == "up":
            return _masked(st.up(on_output=echo).outputs)
        elif action == "destroy":
            st.destroy(on_output=echo)
        elif action == "outputs":
            return _masked(st.outputs())
        else:
            raise ValueError(f"unknown action {action!r}")
    except auto.errors.CommandError as exc:
        raise DeployError(str(exc)) from None
    return {}


def _masked(outputs) -> dict:
    return {k: SECRET if v.secret else v.value for k, v in sorted(outputs.items())}
