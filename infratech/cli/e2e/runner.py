"""The e2e phase runner: each phase in order, timed, its outcome kept; the first phase that fails
stops the run. What exists then is kept for inspection (with the command that cleans it up), or
torn down with ``teardown_on_failure``; a run that passed is torn down unless ``keep``."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from ..submit.cluster import ClusterError
from .model import NAMES, Outcome, PhaseError
from .phases import STEPS, Context

HOLDS_RESOURCES = ("up", "platform", "gpu-health", "work")


@dataclass
class Run:
    stack: str
    started: str
    keep: bool
    teardown_on_failure: bool
    timeouts: dict[str, float]
    outcomes: list[Outcome] = field(default_factory=list)
    finished: Optional[str] = None
    cleanup: Optional[str] = None  # what is left and how to remove it, when something is left

    @property
    def passed(self) -> bool:
        return all(o.status in ("passed", "not-checked", "skipped") for o in self.outcomes) and bool(self.outcomes)

    @property
    def failed_phase(self) -> Optional[str]:
        return next((o.phase for o in self.outcomes if o.status == "failed"), None)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _phase(ctx: Context, name: str, timeout_min: Optional[float]) -> Outcome:
    out = Outcome(name, started=_now(), timeout_min=timeout_min)
    if ctx.progress:
        ctx.progress.start(name)
    start = ctx.clock()
    ctx.deadline = None if timeout_min is None else start + timeout_min * 60
    try:
        STEPS[name](ctx, out)
        if ctx.expired():  # a step that cannot be interrupted (a Pulumi up) and ran past its timeout
            raise PhaseError(f"ran past its --timeout of {timeout_min:g} min")
    except PhaseError as exc:
        out.status, out.error = "failed", str(exc)
    except ClusterError as exc:  # the API server refused or could not be reached
        out.status, out.error = "failed", f"the Kubernetes API: {exc}"
    except Exception as exc:  # noqa: BLE001 - a tool's own failure: its words in the report, the run stops
        out.status, out.error = "failed", f"{type(exc).__name__}: {exc}"
        ctx.echo("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    finally:
        out.seconds = ctx.clock() - start
        ctx.deadline = None
    if ctx.progress:
        ctx.progress.end(out.status if out.error is None else f"failed: {out.error}")
    return out


def run(ctx: Context, keep: bool = False, teardown_on_failure: bool = False,
        timeouts: Optional[dict[str, float]] = None) -> Run:
    timeouts = dict(timeouts or {})
    result = Run(ctx.stack, _now(), keep, teardown_on_failure, timeouts)
    failed = None
    for name in NAMES[:-1]:
        out = _phase(ctx, name, timeouts.get(name))
        result.outcomes.append(out)
        if out.status == "failed":
            failed = name
            break
    for name in NAMES[len(result.outcomes):-1]:
        result.outcomes.append(Outcome(name, status="skipped", error=f"not run: phase {failed} failed"))
    created = any(o.phase in HOLDS_RESOURCES and o.started for o in result.outcomes)
    if failed is not None and not teardown_on_failure:
        skip = f"not run: phase {failed} failed; what exists is kept for inspection"
    elif keep and failed is None:
        skip = "not run: --keep"
    elif not created:
        skip = "not run: nothing was created"
    else:
        skip = None
    if skip is None:
        result.outcomes.append(_phase(ctx, "teardown", timeouts.get("teardown")))
        if result.outcomes[-1].status == "failed":
            result.cleanup = f"the destroy failed: inspect, then rerun `infratech destroy {ctx.stack}`"
    else:
        result.outcomes.append(Outcome("teardown", status="skipped", error=skip))
        if created:
            result.cleanup = f"the stack's resources are kept (and billed): `infratech destroy {ctx.stack}` removes them"
    result.finished = _now()
    return result
