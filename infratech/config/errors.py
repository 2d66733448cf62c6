"""Problems of a stack's configuration, each with its key path, the value given and what is
allowed, in the words of someone writing YAML."""

from __future__ import annotations

import pulumi
from pydantic import ValidationError

from ..policy.model import SECRET
from .common import SECRET_KEYS
from ..validation import Problem, problems
from .stack import StackConfig

class StackConfigError(pulumi.RunError):
    """Every problem of a stack's configuration. A clean, traceback-free failure under Pulumi."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        lines = [f"stack {self.stack!r}: {n} configuration problem{'s' if n != 1 else ''}"]
        lines += [f"  {p.line()}" for p in self.problems]
        return "\n".join(lines)


def stack_problems(exc: ValidationError) -> list[Problem]:
    """Every problem of a stack file's validation; credentials are never echoed back."""
    return problems(exc, StackConfig, root="(stack)", secret_keys=SECRET_KEYS, mask=SECRET)
