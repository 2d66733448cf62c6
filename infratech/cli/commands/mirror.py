"""``infratech mirror list STACK [--json]``: every image, chart and node package the stack pulls.

Offline: derived from the offline plan (no cloud, no registry) and the table of chart images
(infratech/mirror/table.py). See docs/supply-chain.md.
"""

from __future__ import annotations

import json
import sys

from ...exits import EXIT_BAD_INPUT
from .. import plan as _plan
from ..mirror import inventory
from ..stacks import stack_config


def add(sub) -> None:
    mirror = sub.add_parser("mirror", help="the supply chain: images, charts and node packages a stack pulls (docs/supply-chain.md)")
    msub = mirror.add_subparsers(dest="mirror_command", required=True)
    ls = msub.add_parser("list", help="every image, chart and node package the stack pulls, at the pinned versions")
    ls.add_argument("stack")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=run_list)


def run_list(args, project) -> int:
    cfg = stack_config(project, args.stack)
    rec = _plan.record(project, args.stack, secret_overrides=inventory.platform_phase_overrides(cfg))
    try:
        inv = inventory.collect(rec, project.root, cfg.provider)
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
