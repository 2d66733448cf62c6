"""The phases of ``infratech e2e``, what each checks and what it does not, and what a phase leaves:
an :class:`Outcome` with its checks and their evidence. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

Status = Literal["passed", "failed", "skipped", "not-checked"]


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    does: str  # in words, what the phase does
    checks: tuple[str, ...]  # what this version checks
    not_checked: tuple[str, ...]  # what the issue asks for and this version does not check (yet)
    usual_min: float  # its usual duration on a managed cluster, minutes (counted in the cost estimate)
    billable: bool  # creates or keeps billable resources


PHASES: tuple[PhaseSpec, ...] = (
    PhaseSpec("plan", "the offline plan and its policy verdicts; the run's cost estimate",
              ("the stack plans offline", "no mandatory policy rule violated"), (), 1, False),
    PhaseSpec("up", "`infratech up STACK` (self-built stacks: infrastructure, bootstrap, platform)",
              ("the Pulumi up succeeds", "every pool has at least its min nodes Ready, each with its GPUs allocatable"),
              (), 30, True),
    PhaseSpec("platform", "the platform the stack declares, read back from the API server",
              ("every Helm release deployed", "every CRD of the plan's custom resources Established",
               "every Kueue ClusterQueue Active"),
              ("webhooks answering", "DCGM metrics in Prometheus",
               "each admission policy denying a bad pod in a server-side dry run"), 5, True),
    PhaseSpec("gpu-health", "GPU health of every GPU node", (),
              ("the node roles' GPU health check on self-built nodes", "a DCGM diagnostic Job on each GPU node of a managed pool"),
              0, True),
    PhaseSpec("work", "the tiny training (examples/jobs/train-tiny.yaml) through `infratech submit train`",
              ("the TrainJob applied", "its Workload admitted by Kueue on a ClusterQueue", "the job finished successfully"),
              ("the checkpoint in the bucket", "evaluation and its gate", "serving behind the gateway",
               "a request with the openai client"), 20, True),
    PhaseSpec("teardown", "`infratech destroy STACK` (protected buckets are kept)", ("the Pulumi destroy succeeds",),
              (), 15, True),
)
NAMES = tuple(p.name for p in PHASES)
BY_NAME = {p.name: p for p in PHASES}


@dataclass
class Check:
    name: str
    ok: bool
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "evidence": self.evidence}


@dataclass
class Outcome:
    phase: str
    status: Status = "passed"
    started: Optional[str] = None  # UTC, ISO 8601
    seconds: Optional[float] = None
    timeout_min: Optional[float] = None
    checks: list[Check] = field(default_factory=list)
    error: Optional[str] = None

    def check(self, name: str, ok: bool, evidence: str) -> bool:
        self.checks.append(Check(name, ok, evidence))
        return ok

    @property
    def not_checked(self) -> tuple[str, ...]:
        return BY_NAME[self.phase].not_checked

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.phase,
            "status": self.status,
            "started": self.started,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "timeout_min": self.timeout_min,
            "checks": [c.to_dict() for c in self.checks],
            "not_checked": list(self.not_checked),
            "error": self.error,
        }


class PhaseError(Exception):
    """A check failed or a tool refused: the phase fails with this message."""


class BadTimeout(ValueError):
    pass


def parse_timeouts(values: list[str]) -> dict[str, float]:
    """``["up=40", "work=30"]`` -> ``{"up": 40.0, "work": 30.0}``; a message naming the flag otherwise."""
    found: dict[str, float] = {}
    for value in values or ():
        phase, sep, minutes = value.partition("=")
        if not sep:
            raise BadTimeout(f"--timeout {value!r}: expected PHASE=MINUTES, e.g. up=40; phases: {', '.join(NAMES)}")
        if phase not in BY_NAME:
            raise BadTimeout(f"--timeout {value!r}: unknown phase {phase!r}; allowed: {', '.join(NAMES)}")
        try:
            number = float(minutes)
        except ValueError:
            number = -1.0
        if not number > 0 or number != number or number == float("inf"):
            raise BadTimeout(f"--timeout {value!r}: minutes must be a number above 0, e.g. {phase}=30")
        found[phase] = number
    return found
