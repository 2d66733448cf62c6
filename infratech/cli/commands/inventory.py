"""``infratech inventory STACK [--out FILE] [--deployed]``: the node roles' Ansible inventory."""

from __future__ import annotations

import sys
from pathlib import Path

from ...exits import EXIT_BAD_INPUT
from .. import deploy, inventory
from ..errors import os_error


def add(sub) -> None:
    inv = sub.add_parser(
        "inventory",
        help="an Ansible inventory for the node roles from a stack's outputs",
        description="Groups per pool (pool_<name>), gpu_nodes, rke2_servers and rke2_agents, with the "
        "variables the roles read (expected GPU count, labels, taints, server URL). Offline by default "
        "(the plan's outputs); --deployed reads the outputs of the deployed stack (Pulumi CLI).",
    )
    inv.add_argument("stack")
    inv.add_argument("--out", type=Path, default=None, help="write the inventory to this file (default: standard output)")
    inv.add_argument("--deployed", action="store_true", help="use the deployed stack's outputs instead of the offline plan")
    inv.set_defaults(run=run)


def run(args, project) -> int:
    try:
        if args.deployed:
            text = inventory.render(deploy.run(project, args.stack, "outputs"), args.stack)
        else:
            text = inventory.from_plan(project, args.stack)
    except inventory.InventoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    except OSError as exc:
        print(f"error: --out {args.out}: {os_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(args.out)
    return 0
