"""The ``infratech`` command.

    infratech plan [STACK]            offline: tree, build/plan/STACK.json and .md (default stack ovh-gra11)
    infratech preview|up|destroy STACK    through the Pulumi CLI (Automation API)
    infratech outputs STACK           the deployed stack's outputs, secrets masked
    infratech stacks                  the stacks this project ships
    infratech policy-config STACK     --policy-pack-config JSON for policies/sovereignty
    infratech submit train|eval|serve JOB.yaml [--stack S] [--dry-run]
                                      a job file into the team's queue (charts/, docs/jobs.md)
    infratech jobs list|status|logs|cancel [NAME] [-n NS | --team T]
                                      a team's jobs as Kueue sees them, their pods and logs
    infratech images push STACK       the images `make images` built, to the stack's registry (docs/images.md)
    infratech catalog [--provider P] [--region R]   flavours and EUR prices
    infratech cost compare --gpu-model H100 [--gpus-per-node N] [--nodes N] [--hours H] [--json]
                                      every offer meeting a GPU need, cheapest total first (docs/costs.md)

Exit codes: 0 success, 2 bad input (stack file, configuration, flags), 3 a tool missing or failed
(Pulumi CLI, helm, the Kubernetes API),
4 a mandatory policy rule violated (the plan files are still written).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import catalog as _catalog
from . import costs as _costs
from .config import StackConfigError
from .stacks import StackFileError, find_project

DEFAULT_STACK = "ovh-gra11"
EXIT_BAD_INPUT = 2
EXIT_PULUMI = 3
EXIT_POLICY = 4


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

    pc = sub.add_parser("policy-config", help="the stack's policy settings as --policy-pack-config JSON for policies/sovereignty")
    pc.add_argument("stack")

    cat = sub.add_parser("catalog", help="flavours and prices known to the catalog")
    cat.add_argument("--provider", choices=_catalog.load().providers())
    cat.add_argument("--region")
    cat.add_argument("--gpu-only", action="store_true")

    cost = sub.add_parser("cost", help="costs in EUR before anything is created")
    cost_sub = cost.add_subparsers(dest="cost_command", required=True)
    cmp_ = cost_sub.add_parser(
        "compare",
        help="every catalog offer that meets a GPU need, across providers, cheapest total first",
        description="An offer qualifies when its GPU model matches, its GPU memory is at least "
        "--min-gpu-memory and it has at least --gpus-per-node GPUs per node. "
        "total = EUR/h per node x nodes x hours; offers with an unknown price come last, unranked.",
    )
    cmp_.add_argument("--gpu-model", metavar="MODEL", help="GPU model id or name, whole words: H100 matches h100-80gb, h100-pcie, h100-sxm")
    cmp_.add_argument("--min-gpu-memory", type=float, metavar="GIB", help="at least this much memory per GPU")
    cmp_.add_argument("--gpus-per-node", type=int, default=1, metavar="N", help="at least N GPUs in each node (default: 1)")
    cmp_.add_argument("--nodes", type=int, default=1, metavar="N", help="number of nodes (default: 1)")
    month = _catalog.HOURS_PER_MONTH
    cmp_.add_argument("--hours", type=float, default=float(month), metavar="H", help=f"hours of use (default: {month}, a month)")
    cmp_.add_argument("--provider", help="only this provider's offers")
    cmp_.add_argument("--region", help="only offers sold in this region or zone")
    cmp_.add_argument("--priced-only", action="store_true", help="leave out offers whose price is unknown")
    cmp_.add_argument("--json", action="store_true", help="machine-readable output")
    from .submit.cli import add_commands as add_submit_commands

    add_submit_commands(sub, DEFAULT_STACK)
    from .images.cli import add_commands as add_image_commands

    add_image_commands(sub)
    return p


def _cmd_plan(args, project) -> int:
    from . import plan as _plan
    from .plan import report

    from .policy import blocking

    out_dir = args.out or project.root / "build" / "plan"
    rec = _plan.record(project, args.stack)
    verdicts = _plan.policy_verdicts(project, rec)
    try:
        files = _plan.write(rec, out_dir, verdicts)
    except OSError as exc:  # the output directory cannot be made or written
        print(f"error: --out {out_dir}: {_os_error(exc)}", file=sys.stderr)
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


def _cmd_policy_config(args, project) -> int:
    from . import config
    from .policy.pack import pack_config
    from .stacks import read_stack_config

    raw, secret_keys = read_stack_config(project, args.stack)
    prefix = config.NAMESPACE + ":"
    cfg = config.parse(config.raw_from_config(raw), args.stack, [k[len(prefix):] for k in secret_keys if k.startswith(prefix)])
    print(json.dumps(pack_config(cfg.policy.settings()), indent=2, sort_keys=True))
    return 0


def _os_error(exc: OSError) -> str:
    """'Not a directory: /path' -- the reason and the path it is about, without a traceback."""
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)


def _cmd_inventory(args, project) -> int:
    from . import inventory

    try:
        if args.deployed:
            from . import deploy

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
        print(f"error: --out {args.out}: {_os_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(args.out)
    return 0


def _cmd_catalog(args) -> int:
    cat = _catalog.load()
    providers = [args.provider] if args.provider else cat.providers()
    if args.region is not None and not any(cat.location(p, args.region) for p in providers):
        known = sorted({loc for p in providers for r in cat.regions(p).values() for loc in r.locations})
        print(f"error: --region {args.region!r} is not a region or zone of {' or '.join(providers)}; allowed: {', '.join(known)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def sold_there(o: _catalog.Offer) -> bool:
        if args.region is None:
            return True
        own = cat.location(o.provider, args.region)  # None: a region of another provider
        if own is None:
            return False
        return o.sold_in_region(own) if own.name == args.region else o.sold_in(args.region)

    rows = [o for o in cat.offers(args.provider) if sold_there(o) and (o.is_gpu or not args.gpu_only)]
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


class BadFlag(Exception):
    """A flag given a value it does not allow; the message names the flag and what is allowed."""


# the fields of costs.Need, as the flags that set them
_NEED_FLAGS = {
    "gpu_model": "--gpu-model",
    "min_gpu_memory_gib": "--min-gpu-memory",
    "gpus_per_node": "--gpus-per-node",
    "nodes": "--nodes",
    "hours": "--hours",
    "provider": "--provider",
    "region": "--region",
}
SECNUMCLOUD_WORDS = {"qualified": "qualified", "not_qualified": "not qualified", "unverified": "unverified"}


def _need(args) -> _costs.Need:
    if args.gpu_model is None and args.min_gpu_memory is None:
        raise BadFlag("give --gpu-model MODEL or --min-gpu-memory GIB (or both): the need names the GPUs")
    return _costs.Need(
        gpu_model=args.gpu_model,
        min_gpu_memory_gib=args.min_gpu_memory,
        gpus_per_node=args.gpus_per_node,
        nodes=args.nodes,
        hours=args.hours,
        provider=args.provider,
        region=args.region,
    )


def _describe(need: _costs.Need) -> str:
    parts = []
    if need.gpu_model is not None:
        parts.append(f"GPU model {need.gpu_model}")
    if need.min_gpu_memory_gib is not None:
        parts.append(f"at least {need.min_gpu_memory_gib:g} GiB per GPU")
    parts.append(f"at least {need.gpus_per_node} GPU{'s' if need.gpus_per_node != 1 else ''} per node")
    parts.append(f"{need.nodes} node{'s' if need.nodes != 1 else ''}")
    parts.append(f"{need.hours:g} h")
    if need.provider:
        parts.append(f"provider {need.provider}")
    if need.region:
        parts.append(f"sold in {need.region}")
    return ", ".join(parts)


def _cmd_cost_compare(args) -> int:
    need = _need(args)
    try:
        matches = _costs.compare(need)
    except _costs.NeedError as exc:
        raise BadFlag(f"{_NEED_FLAGS[exc.field]} {exc}") from None
    if args.priced_only:
        matches = [m for m in matches if m.total_eur is not None]
    if args.json:
        print(json.dumps(_compare_json(need, matches), indent=2, ensure_ascii=False))
        return 0
    print(f"Need: {_describe(need)}")
    if not matches:
        print("No catalog offer meets this need.")
        return 0
    header = ["provider", "flavor", "GPUs/node", "GPU model", "GPU GiB", "sold in", "EUR/h per node", "total EUR",
              "price as of", "jurisdiction", "SecNumCloud", "managed pool"]
    rows = [header]
    for m in matches:
        o, f = m.offer, m.facts
        rows.append(
            [
                o.provider,
                o.flavor,
                str(o.gpu_count),
                o.gpu_model or "-",
                _n(o.gpu_memory_gib),
                "any region" if o.regions is None else ",".join(o.regions),
                "unknown" if o.eur_per_hour is None else _costs.eur_rate(o.eur_per_hour),
                "unknown" if m.total_eur is None else _costs.eur(m.total_eur),
                "-" if o.eur_per_hour is None else (o.as_of or "undated"),
                "?" if f is None else f.jurisdiction,
                "?" if f is None else SECNUMCLOUD_WORDS[f.secnumcloud],
                {"supported": "yes", "unverified": "unverified*"}.get(o.managed_pool or "", "-"),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 4, 6, 7}
    for row in rows:
        print("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    priced = sum(m.total_eur is not None for m in matches)
    unpriced = len(matches) - priced
    print(
        f"{priced} priced (cheapest first), {unpriced} with an unknown price (listed last, not ranked). "
        f"total = EUR/h per node x {need.nodes} node{'s' if need.nodes != 1 else ''} x {need.hours:g} h; "
        "public list prices excl. VAT as of the date shown: re-check before buying."
    )
    if any(m.offer.managed_pool == "unverified" for m in matches):
        print("* sold as an instance; no source records it working as a managed Kubernetes node pool (catalog managed_pool)")
    notes = {f.provider: f for f in (m.facts for m in matches) if f is not None}
    for provider, facts in sorted(notes.items()):
        print(f"SecNumCloud, {facts.title}: {facts.secnumcloud_note} ({facts.source}, {facts.as_of or 'undated'})")
    return 0


def _compare_json(need: _costs.Need, matches: list[_costs.Match]) -> dict:
    offers = []
    rank = 0
    for m in matches:
        row = m.to_dict()
        if m.total_eur is not None:
            rank += 1
        row["rank"] = rank if m.total_eur is not None else None
        offers.append(row)
    return {
        "need": {
            "gpu_model": need.gpu_model,
            "min_gpu_memory_gib": need.min_gpu_memory_gib,
            "gpus_per_node_at_least": need.gpus_per_node,
            "nodes": need.nodes,
            "hours": need.hours,
            "provider": need.provider,
            "region": need.region,
        },
        "currency": "EUR",
        "total": "eur_per_hour_per_node * nodes * hours; null when the price is unknown",
        "offers": offers,
    }


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
        if args.command == "catalog":
            return _cmd_catalog(args)
        if args.command == "cost":
            return _cmd_cost_compare(args)
        project = find_project(args.project_dir)
        if args.command == "stacks":
            print("\n".join(project.stacks()))
            return 0
        if args.command == "plan":
            return _cmd_plan(args, project)
        if args.command == "policy-config":
            return _cmd_policy_config(args, project)
        if args.command == "inventory":
            return _cmd_inventory(args, project)
        if args.command == "images":
            from .images.cli import run as run_images

            return run_images(args, project)
        if args.command in ("submit", "jobs"):
            from .submit.cli import run as run_submit

            return run_submit(args, project)
        from . import deploy, plan as _plan

        # Validate offline first: a bad stack file, or one that breaks a mandatory policy rule,
        # never reaches the cloud.
        from .policy import blocking

        failed = blocking(_plan.policy_verdicts(project, _plan.record(project, args.stack)))
        if failed and args.command in ("preview", "up"):
            print(
                f"error: mandatory policy rule(s) violated: {', '.join(v.rule.id for v in failed)}; "
                f"see `infratech plan {args.stack}`",
                file=sys.stderr,
            )
            return EXIT_POLICY
        outputs = deploy.run(project, args.stack, args.command)
        if outputs:
            print(json.dumps(outputs, indent=2, sort_keys=True, default=str))
        return 0
    except (StackConfigError, StackFileError, BadFlag) as exc:
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
