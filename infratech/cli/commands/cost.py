"""``infratech cost compare``: every catalog offer that meets a GPU need, cheapest total first."""

from __future__ import annotations

import json
import sys

from ... import catalog as _catalog
from ... import costs as _costs
from ...costs import compare as _compare
from .. import tables
from ..errors import BadFlag


def add(sub) -> None:
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
    cmp_.set_defaults(run=run, project_free=True)


# the fields of compare.Need, as the flags that set them
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


def _need(args) -> _compare.Need:
    if args.gpu_model is None and args.min_gpu_memory is None:
        raise BadFlag("give --gpu-model MODEL or --min-gpu-memory GIB (or both): the need names the GPUs")
    return _compare.Need(
        gpu_model=args.gpu_model,
        min_gpu_memory_gib=args.min_gpu_memory,
        gpus_per_node=args.gpus_per_node,
        nodes=args.nodes,
        hours=args.hours,
        provider=args.provider,
        region=args.region,
    )


def _describe(need: _compare.Need) -> str:
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


def run(args, project=None) -> int:
    need = _need(args)
    try:
        matches = _compare.compare(need)
    except _compare.NeedError as exc:
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
    rows = []
    for m in matches:
        o, f = m.offer, m.facts
        rows.append(
            [
                o.provider,
                o.flavor,
                str(o.gpu_count),
                o.gpu_model or "-",
                tables.number(o.gpu_memory_gib),
                "any region" if o.regions is None else ",".join(o.regions),
                "unknown" if o.eur_per_hour is None else _costs.eur_rate(o.eur_per_hour),
                "unknown" if m.total_eur is None else _costs.eur(m.total_eur),
                "-" if o.eur_per_hour is None else (o.as_of or "undated"),
                "?" if f is None else f.jurisdiction,
                "?" if f is None else SECNUMCLOUD_WORDS[f.secnumcloud],
                {"supported": "yes", "unverified": "unverified*"}.get(o.managed_pool or "", "-"),
            ]
        )
    sys.stdout.write(tables.render(header, rows, right=(2, 4, 6, 7)))
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


def _compare_json(need: _compare.Need, matches: list[_compare.Match]) -> dict:
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
