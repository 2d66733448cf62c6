"""The ``infratech`` command.

    infratech plan [STACK]            offline: tree, build/plan/STACK.json and .md (default stack ovh-gra11)
    infratech preview|up|destroy STACK    through the Pulumi CLI (Automation API)
    infratech outputs STACK           the deployed stack's outputs, secrets masked
    infratech stacks                  the stacks this project ships
    infratech e2e STACK [--yes] [--keep] [--teardown-on-failure] [--dry-run] [--timeout PHASE=MIN]
                                      an acceptance run on the provider, a report per phase (docs/e2e.md)
    infratech policy-config STACK     --policy-pack-config JSON for policies/sovereignty
    infratech submit train|eval|serve JOB.yaml [--stack S] [--dry-run]
                                      a job file into the team's queue (charts/, docs/jobs.md)
    infratech jobs list|status|logs|watch|cancel [NAME] [-n NS | --team T]
                                      a team's jobs as Kueue sees them, their pods and logs; watch: until it ends
    infratech images push STACK       the images `make images` built, to the stack's registry (docs/images.md)
    infratech mirror list STACK [--json]
                                      every image, chart and node package the stack pulls (docs/supply-chain.md)
    infratech mirror sync STACK [--to REGISTRY[/PREFIX] | --to-dir DIR] [--from-dir DIR] [--lock FILE]
                                      those images copied (skopeo, digests kept), a lock file written
    infratech kubeconfig STACK --team T [--out FILE] [--deployed] [--token-for MEMBER]
                                      a kubeconfig for a team's members, no admin secret (docs/access.md)
    infratech catalog [--provider P] [--region R]   flavours and EUR prices
    infratech models show ORG/NAME[:REVISION] --store URL
                                      a registry model's lineage, checked (docs/registry.md)
    infratech cost compare --gpu-model H100 [--gpus-per-node N] [--nodes N] [--hours H] [--json]
                                      every offer meeting a GPU need, cheapest total first (docs/costs.md)

Exit codes: 0 success, 2 bad input (stack file, configuration, flags), 3 a tool missing or failed
(Pulumi CLI, helm, the Kubernetes API),
4 a mandatory policy rule violated (the plan files are still written).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..config import StackConfigError
from ..exits import DEFAULT_STACK, EXIT_BAD_INPUT, EXIT_TOOL
from .commands import access, catalog, cost, deploy as deploy_commands, e2e, images, inventory, mirror, models, plan
from .deploy import DeployError, PulumiCliMissing
from .errors import BadFlag
from .stacks import StackFileError, find_project
from .submit import cli as submit_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infratech", description="Sovereign GPU cloud on French providers.")
    p.add_argument("--project-dir", type=Path, default=None, help="directory holding Pulumi.yaml (default: search upwards from cwd)")
    sub = p.add_subparsers(dest="command", required=True)
    for commands in (plan, deploy_commands, inventory, catalog, cost, access, images, mirror, e2e, models):
        commands.add(sub)
    submit_cli.add_commands(sub, DEFAULT_STACK)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `infratech catalog | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, so the final flush goes nowhere
        return 0


def _close_event_loop() -> None:
    """Close the event loop the Pulumi runtime opened for the offline plan, if any: left to the
    garbage collector at interpreter exit, it sometimes prints an "Exception ignored" traceback."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            return
    if not loop.is_running() and not loop.is_closed():
        loop.close()


atexit.register(_close_event_loop)  # at exit, not after each call: in-process callers reuse the loop


def _main(argv: Optional[Sequence[str]]) -> int:
    args = _parser().parse_args(argv)
    try:
        project = None if getattr(args, "project_free", False) else find_project(args.project_dir)
        return args.run(args, project)
    except (StackConfigError, StackFileError, BadFlag) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (PulumiCliMissing, DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOL
