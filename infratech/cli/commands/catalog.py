"""``infratech catalog [--provider P] [--region R] [--gpu-only]``: flavours and EUR prices."""

from __future__ import annotations

import sys

from ... import catalog as _catalog
from ...exits import EXIT_BAD_INPUT
from ..tables import number


def add(sub) -> None:
    cat = sub.add_parser("catalog", help="flavours and prices known to the catalog")
    cat.add_argument("--provider", choices=_catalog.load().providers())
    cat.add_argument("--region")
    cat.add_argument("--gpu-only", action="store_true")
    cat.set_defaults(run=run, project_free=True)


def run(args, project=None) -> int:
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
            f"{o.provider:9} {o.flavor:16} {o.gpu_count:>4} {o.gpu_model_id or '-':18} {number(o.gpu_memory_gib):>7} "
            f"{number(o.vcpus):>4} {number(o.ram_gib):>7} {price:>8}  {regions}"
        )
    return 0
