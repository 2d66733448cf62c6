"""``infratech mirror list STACK [--json]``: every image, chart and node package the stack pulls.
``infratech mirror sync STACK --to REGISTRY[/PREFIX] | --to-dir DIR [--from-dir DIR] [--lock FILE]``:
those images copied there (skopeo, all architectures, digests preserved), a lock file written.

Offline: derived from the offline plan (no cloud, no registry) and the table of chart images
(infratech/mirror/table.py). See docs/supply-chain.md.
"""

from __future__ import annotations

import json
import sys

from pathlib import Path

from workloads.progress import Progress

from ...exits import EXIT_BAD_INPUT, EXIT_TOOL
from .. import plan as _plan
from ..mirror import inventory, sync as _sync
from ..stacks import stack_config


def add(sub) -> None:
    mirror = sub.add_parser("mirror", help="the supply chain: images, charts and node packages a stack pulls (docs/supply-chain.md)")
    msub = mirror.add_subparsers(dest="mirror_command", required=True)
    ls = msub.add_parser("list", help="every image, chart and node package the stack pulls, at the pinned versions")
    ls.add_argument("stack")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=run_list)
    sy = msub.add_parser("sync", help="copy every image of the stack to a registry or to OCI layouts (skopeo, digests preserved)")
    sy.add_argument("stack")
    where = sy.add_mutually_exclusive_group()
    where.add_argument("--to", metavar="REGISTRY[/PREFIX]",
                       help="a registry (host[:port], no scheme) and path prefix (default: the stack's mirror.registry/prefix)")
    where.add_argument("--to-dir", type=Path, metavar="DIR", help="OCI layouts under DIR/<host>/<path>, to carry on a disk")
    sy.add_argument("--from-dir", type=Path, metavar="DIR", help="copy from the OCI layouts a --to-dir wrote, not from upstream")
    sy.add_argument("--lock", type=Path, default=None, help="image -> digest lock (default: <project>/build/mirror/STACK.lock.json)")
    sy.add_argument("--retries", type=int, default=2, help="retries of a failed copy (default 2)")
    sy.add_argument("--retry-delay", type=float, default=2.0, metavar="S", help="seconds before the first retry, growing (default 2)")
    sy.add_argument("--no-tls-verify", action="store_true", help="plain HTTP or self-signed registry (a local test registry)")
    sy.set_defaults(run=run_sync)


def _inventory(project, stack):
    cfg = stack_config(project, stack)
    rec = _plan.record(project, stack, secret_overrides=inventory.platform_phase_overrides(cfg))
    return inventory.collect(rec, project.root, cfg.provider, mirror_base=cfg.mirror.base if cfg.mirror else None)


def run_list(args, project) -> int:
    try:
        inv = _inventory(project, args.stack)
    except inventory.MirrorTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(inv.to_json(), indent=2, sort_keys=True))
        return 0
    print(f"# stack {inv.stack}: {len(inv.images)} images, {len(inv.charts)} charts, {len(inv.node_packages)} node artifacts")
    print("\n## images")
    for image in inv.images:
        print(f"{image.ref}    # {'; '.join(image.sources)}")
    print("\n## charts")
    for c in inv.charts:
        where = c["chart"] if c["repository"] is None else f"{c['repository']} {c['chart']}"
        print(f"{where} {c['version']}")
    if inv.node_packages:
        print("\n## node packages and artifacts (self-built nodes)")
        for p in inv.node_packages:
            print(f"{p['kind']:5} {p['url']}    # {p['for']}")
    if inv.unlisted:
        print("\n## subcharts whose images are not known offline (their values are not in the reference data)")
        for line in inv.unlisted:
            print(line)
    return 0


def run_sync(args, project) -> int:
    if args.to is not None and ("://" in args.to or args.to.endswith("/")):
        print(f"error: --to {args.to!r}: give registry[:port][/prefix], no scheme and no trailing '/'", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        inv = _inventory(project, args.stack)
    except inventory.MirrorTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.to is None and args.to_dir is None:
        cfg = stack_config(project, args.stack)
        if cfg.mirror is None:
            print(f"error: stack {args.stack} has no mirror: settings; give --to REGISTRY[/PREFIX] or --to-dir DIR", file=sys.stderr)
            return EXIT_BAD_INPUT
        args.to = cfg.mirror.base.rstrip("/")
    lock = args.lock or project.root / "build" / "mirror" / f"{args.stack}.lock.json"
    progress = Progress(f"mirror sync {args.stack}")
    try:
        result = _sync.sync([i.ref for i in inv.images], lock, to=args.to, to_dir=args.to_dir, from_dir=args.from_dir,
                            tls_verify=not args.no_tls_verify, retries=max(0, args.retries),
                            retry_delay_s=max(0.0, args.retry_delay), progress=progress)
    except _sync.SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOL
    print(f"{len(result.copied)} copied, {len(result.present)} already there, {len(result.failed)} failed; lock {lock}")
    for ref, why in sorted(result.failed.items()):
        print(f"error: {ref} was not copied: {why}", file=sys.stderr)
    return EXIT_TOOL if result.failed else 0
