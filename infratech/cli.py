"""The ``infratech`` command.

    infratech plan [STACK]            offline: tree, build/plan/STACK.json and .md (default stack ovh-gra11)
    infratech preview|up|destroy STACK    through the Pulumi CLI (Automation API)
    infratech outputs STACK           the deployed stack's outputs, secrets masked
    infratech stacks                  the stacks this project ships
    infratech catalog [--provider P] [--region R]   flavours and EUR prices

Exit codes: 0 success, 2 bad input (stack file, configuration), 3 Pulumi CLI missing or failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import catalog as _catalog
from .config import StackConfigError
from .stacks import StackFileError, find_project

DEFAULT_STACK = "ovh-gra11"
EXIT_BAD_INPUT = 2
EXIT_PULUMI = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infratech", description="Sovereign GPU cloud on French providers.")
    p.add_argument("--project-dir", type=Path, default=None, help="directory holding Pulumi.yaml (default: search upwards from cwd)")
    sub = p.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="offline plan of a stack: no Pulumi CLI, cloud or credentials")
    plan.add_argument("stack", nargs="?", default=DEFAULT_STACK, help=f"stack name (default: {DEFAULT_STACK})")
    plan.add_argument("--out", type=Path, default=None, help="output directory (default: <project>/build/plan)")
    plan.add_argument("--quiet", action="store_true", help="write the files, print only their paths")

    for action, text in (
        ("preview", "pulumi preview of a stack"),
        ("up", "create or update a stack's resources"),
        ("destroy", "delete a stack's resources (protected buckets are kept)"),
        ("outputs", "a deployed stack's outputs, secrets masked"),
    ):
        sp = sub.add_parser(action, help=text)
        sp.add_argument("stack")

    sub.add_parser("stacks", help="list the stacks of this project")

    cat = sub.add_parser("catalog", help="flavours and prices known to the catalog")
    cat.add_argument("--provider", choices=_catalog.load().providers())
    cat.add_argument("--region")
    cat.add_argument("--gpu-only", action="store_true")
    return p


def _cmd_plan(args, project) -> int:
    from . import plan as _plan
    from .plan import report

    out_dir = args.out or project.root / "build" / "plan"
    rec, files = _plan.plan(project, args.stack, out_dir)
    if not args.quiet:
        sys.stdout.write(report.to_text(rec))
    print(f"wrote {files.json}")
    print(f"wrote {files.markdown}")
    return 0


def _cmd_catalog(args) -> int:
    cat = _catalog.load()
    rows = [
        o
        for o in cat.offers(args.provider)
        if (args.region is None or (o.regions is not None and args.region in o.regions)) and (o.is_gpu or not args.gpu_only)
    ]
    print(f"{'provider':9} {'flavor':16} {'gpus':>4} {'gpu model':18} {'gpu GiB':>7} {'vcpu':>4} {'ram GiB':>7} {'EUR/h':>8}  regions")
    for o in sorted(rows, key=lambda o: (o.provider, o.gpu_model or "", o.gpu_count, o.flavor)):
        price = "unknown" if o.eur_per_hour is None else f"{o.eur_per_hour:.4g}"
        regions = "any" if o.regions is None else ",".join(o.regions)
        print(
            f"{o.provider:9} {o.flavor:16} {o.gpu_count:>4} {o.gpu_model_id or '-':18} {_n(o.gpu_memory_gib):>7} "
            f"{_n(o.vcpus):>4} {_n(o.ram_gib):>7} {price:>8}  {regions}"
        )
    return 0


def _n(value) -> str:
    return "?" if value is None else f"{value:g}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "catalog":
            return _cmd_catalog(args)
        project = find_project(args.project_dir)
        if args.command == "stacks":
            print("\n".join(project.stacks()))
            return 0
        if args.command == "plan":
            return _cmd_plan(args, project)
        from . import deploy, plan as _plan

        # Validate offline first: a bad stack file never reaches the cloud.
        _plan.record(project, args.stack)
        outputs = deploy.run(project, args.stack, args.command)
        if outputs:
            print(json.dumps(outputs, indent=2, sort_keys=True, default=str))
        return 0
    except (StackConfigError, StackFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # the deploy errors; imported lazily so `plan` needs no Automation API
        from .deploy import DeployError, PulumiCliMissing

        if isinstance(exc, (PulumiCliMissing, DeployError)):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_PULUMI
        raise


if __name__ == "__main__":
    sys.exit(main())
