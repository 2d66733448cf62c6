"""``infratech images push STACK``: the images `make images` built, to the stack's registry.

    infratech images push STACK [--lock build/images/images.lock] [--no-tls-verify]

Pushes every image of the lock with its digest unchanged to ``platform.image_registry``, then
writes build/images/STACK/values-<chart>-<variant>.yaml: `helm install -f` pins each chart there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ...exits import EXIT_BAD_INPUT, EXIT_TOOL
from ...images import registry
from ...images.spec import VERSION
from ..stacks import stack_config


def add(sub) -> None:
    images = sub.add_parser("images", help="push the built workload images to the stack's registry (docs/images.md)")
    isub = images.add_subparsers(dest="images_command", required=True)
    push = isub.add_parser("push", help="copy build/images/images.lock's images to platform.image_registry")
    push.add_argument("stack")
    push.add_argument("--lock", type=Path, default=None, help="default: <project>/build/images/images.lock")
    push.add_argument("--no-tls-verify", action="store_true", help="plain HTTP registry (a local test registry)")
    images.set_defaults(run=run)


def run(args, project) -> int:
    cfg = stack_config(project, args.stack)
    target = cfg.platform.image_registry
    if not target:
        print(f"error: stack {args.stack}: platform.image_registry is not set; name the registry the cluster pulls "
              "from, e.g. rg.fr-par.scw.cloud/infratech-souveraine (docs/images.md)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        lock = registry.read_lock(args.lock or project.root / registry.DEFAULT_LOCK)
    except registry.ImagesLockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        pushed = registry.push(lock, target, VERSION, tls_verify=not args.no_tls_verify)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOL
    print("\n".join(pushed))
    for variant in sorted({e["variant"] for e in lock["images"].values()}):
        paths = registry.write_values(lock, target, variant, project.root / "build" / "images" / args.stack, partial=True)
        print("\n".join(f"wrote {p}" for p in paths))
        skipped = sorted(set(registry.CHARTS) - {p.name.split("-", 1)[1].rsplit("-", 1)[0] for p in paths})
        if skipped:
            print(f"note: not all images of {', '.join(skipped)} were built ({variant}): their values are not written",
                  file=sys.stderr)
    return 0
