"""``infratech e2e STACK [--yes] [--keep] [--teardown-on-failure] [--dry-run] [--timeout PHASE=MIN]``:
an acceptance run on the stack's provider, with a report of every phase (infratech/cli/e2e/, docs/e2e.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.progress import Progress

from ...exits import EXIT_BAD_INPUT, EXIT_TOOL
from .. import deploy
from ..e2e import phases as _phases, report as _report, runner as _runner
from ..e2e.estimate import estimate as _estimate
from ..e2e.model import NAMES, BadTimeout, parse_timeouts
from ..errors import BadFlag
from ..stacks import stack_config

REPORTS = Path("build") / "e2e"  # under the project root


def add(sub) -> None:
    p = sub.add_parser("e2e", help="an acceptance run of a stack on its provider, with a report of every phase",
                       description="Plan, up, platform, GPU health, work, teardown; each phase timed and written to "
                       "build/e2e/<stack>-<UTC time>.json and .md (docs/e2e.md). Creates billable resources: needs --yes.")
    p.add_argument("stack")
    p.add_argument("--yes", action="store_true", help="go on and create the stack's billable resources")
    p.add_argument("--keep", action="store_true", help="keep the stack after a run that passed (no teardown)")
    p.add_argument("--teardown-on-failure", action="store_true",
                   help="destroy the stack when a phase fails (default: keep it for inspection)")
    p.add_argument("--dry-run", action="store_true", help="print the phases, their checks, durations and the cost; create nothing")
    p.add_argument("--timeout", action="append", default=[], metavar="PHASE=MIN",
                   help=f"a phase's limit in minutes, repeatable; phases: {', '.join(NAMES)}")
    p.set_defaults(run=run)


def run(args, project) -> int:
    try:
        timeouts = parse_timeouts(args.timeout)
    except BadTimeout as exc:
        raise BadFlag(str(exc)) from None
    estimate = _estimate(stack_config(project, args.stack))  # an unknown or bad stack: exit 2 here
    if args.dry_run:
        sys.stdout.write(_report.dry_run_text(args.stack, estimate, timeouts))
        return 0
    if not args.yes:
        print(f"error: `infratech e2e {args.stack}` creates billable resources ({estimate.words()}): "
              f"add --yes to go on, or --dry-run to see the phases and the cost", file=sys.stderr)
        return EXIT_BAD_INPUT
    deploy.require_pulumi_cli("e2e")  # a missing CLI is one line, before anything is started
    log = deploy.log_file(project, args.stack, "e2e")
    progress = Progress(f"e2e {args.stack}")
    progress.log(f"the tools' output: {log}")
    progress.log(f"cost of the run: {estimate.words()}")
    with open(log, "a", encoding="utf-8") as fh:
        def echo(line: str) -> None:
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()

        ctx = _phases.Context(project, args.stack, echo=echo, progress=progress, log=log, poll_s=_phases.POLL_S)
        result = _runner.run(ctx, keep=args.keep, teardown_on_failure=args.teardown_on_failure, timeouts=timeouts)
    progress.summary()
    json_path, md_path = _report.write(result, estimate, project.root / REPORTS)
    print(f"report: {json_path} and {md_path}")
    if result.cleanup:
        print(f"clean up: {result.cleanup}", file=sys.stderr)
    if not result.passed:
        failed = next(o for o in result.outcomes if o.status == "failed")
        print(f"error: phase {failed.phase} failed: {failed.error}", file=sys.stderr)
        return EXIT_TOOL
    return 0
