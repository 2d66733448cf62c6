"""``infratech preview|up|destroy|outputs STACK`` through the Pulumi CLI, and ``infratech stacks``.

A stack is planned offline first: a bad stack file, or one that breaks a mandatory policy rule,
never reaches the cloud.
"""

from __future__ import annotations

import json
import sys

from workloads.progress import Progress

from ...exits import EXIT_POLICY, EXIT_TOOL
from ...policy import blocking
from .. import deploy, plan as _plan
from .. import phases  # self-built clusters: `up` in phases (infratech/cli/phases.py)
from ..backend import BackendError, ensure_bucket

ACTIONS = (
    ("preview", "pulumi preview of a stack"),
    ("up", "create or update a stack's resources"),
    ("destroy", "delete a stack's resources (protected buckets are kept)"),
    ("outputs", "a deployed stack's outputs, secrets masked"),
)


def add(sub) -> None:
    for action, text in ACTIONS:
        sp = sub.add_parser(action, help=text)
        sp.add_argument("stack")
        if action == "up":  # --- phases hook (infratech/cli/phases.py) ---
            phases.add_arguments(sp)
        sp.set_defaults(run=run)
    sub.add_parser("stacks", help="list the stacks of this project").set_defaults(run=run_stacks)
    be = sub.add_parser("backend", help="where the stack's Pulumi state and secrets live (a bucket in its own region)",
                        description="The self-managed backend preview, up and destroy use unless PULUMI_BACKEND_URL names "
                        "another: by default a versioned, encrypted bucket <name>-pulumi-state on the stack's own S3 endpoint.")
    be.add_argument("stack")
    be.add_argument("--create", action="store_true", help="create the bucket when missing (versioned, encrypted); needs S3 keys")
    be.set_defaults(run=run_backend)


def run_backend(args, project) -> int:
    backend = deploy.backend_for(project, args.stack)
    where = ", ".join(x for x in (backend.provider, backend.region, backend.country) if x) or "location unknown"
    print(f"backend: {backend.url or '(Pulumi Cloud, the hosted default)'}")
    print(f"where: {where}")
    print(f"secrets: {backend.encryption}")
    print(f"login: pulumi login '{backend.url}'" if backend.url else "login: name one in state.backend")
    if args.create:
        try:
            created = ensure_bucket(backend)
        except BackendError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_TOOL
        if not created:
            print(f"the bucket {backend.bucket} exists already")
    return 0


def run_stacks(args, project) -> int:
    print("\n".join(project.stacks()))
    return 0


def run(args, project) -> int:
    failed = blocking(_plan.policy_verdicts(project, _plan.record(project, args.stack)))
    if failed and args.command in ("preview", "up"):
        print(
            f"error: mandatory policy rule(s) violated: {', '.join(v.rule.id for v in failed)}; "
            f"see `infratech plan {args.stack}`",
            file=sys.stderr,
        )
        return EXIT_POLICY
    if args.command == "up":  # --- phases hook: self-built clusters run infrastructure, bootstrap, platform ---
        status = phases.command(project, args.stack, args.phase, args.node_vars)
        if status is not None:
            return status
    if args.command == "outputs":
        outputs = deploy.run(project, args.stack, args.command)
    else:
        outputs = _with_progress(project, args.stack, args.command)
    if outputs:
        print(json.dumps(outputs, indent=2, sort_keys=True, default=str))
    return 0


def _with_progress(project, stack: str, action: str) -> dict:
    """preview, up, destroy: the phase, its time and resources done on screen (live on a terminal,
    plain lines in CI), Pulumi's own output in a log file named first, what changed at the end."""
    deploy.require_pulumi_cli(action)  # a missing CLI is one line, with no log file or progress started
    log = deploy.log_file(project, stack, action)
    progress = Progress(f"{action} {stack}")
    progress.log(f"Pulumi's output: {log}")
    with open(log, "a", encoding="utf-8") as fh:
        def echo(line: str) -> None:
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()

        with progress.phase(action):
            outputs = deploy.run(project, stack, action, echo=echo, progress=progress)
    progress.summary()
    return outputs
