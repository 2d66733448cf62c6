"""``infratech plan [STACK]`` and ``infratech policy-config STACK``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ...exits import DEFAULT_STACK, EXIT_BAD_INPUT, EXIT_POLICY
from ...policy import blocking
from ...policy.packconfig import pack_config
from .. import plan as _plan
from ..errors import os_error
from ..plan import report
from ..stacks import stack_config


def add(sub) -> None:
    plan = sub.add_parser("plan", help="offline plan of a stack: no Pulumi CLI, cloud or credentials")
    plan.add_argument("stack", nargs="?", default=DEFAULT_STACK, help=f"stack name (default: {DEFAULT_STACK})")
    plan.add_argument("--out", type=Path, default=None, help="output directory (default: <project>/build/plan)")
    plan.add_argument("--quiet", action="store_true", help="write the files, print only their paths")
    plan.set_defaults(run=run_plan)

    pc = sub.add_parser("policy-config", help="the stack's policy settings as --policy-pack-config JSON for policies/sovereignty")
    pc.add_argument("stack")
    pc.set_defaults(run=run_policy_config)


def run_plan(args, project) -> int:
    out_dir = args.out or project.root / "build" / "plan"
    rec = _plan.record(project, args.stack)
    verdicts = _plan.policy_verdicts(project, rec)
    try:
        files = _plan.write(rec, out_dir, verdicts)
    except OSError as exc:  # the output directory cannot be made or written
        print(f"error: --out {out_dir}: {os_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        sys.stdout.write(report.to_text(rec, verdicts))
    print(f"wrote {files.json}")
    print(f"wrote {files.markdown}")
    failed = blocking(verdicts)
    if failed:
        print(f"error: mandatory policy rule(s) violated: {', '.join(v.rule.id for v in failed)}", file=sys.stderr)
        return EXIT_POLICY
    return 0


def run_policy_config(args, project) -> int:
    cfg = stack_config(project, args.stack)
    print(json.dumps(pack_config(cfg.policy_settings()), indent=2, sort_keys=True))
    return 0
