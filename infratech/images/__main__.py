"""Build, lock and run the workload images (docs/images.md); `make images` calls ``build``.

    python -m infratech.images lock  [--variant cpu|cuda] [IMAGE ...]    resolve images/*/requirements-*.in
    python -m infratech.images build [--variant cpu|cuda] [IMAGE ...]    buildah, as root; build/images/images.lock
    python -m infratech.images build --dry-run [--variant cpu|cuda] [IMAGE ...]
                                                    the steps the build would run; nothing built or fetched
    python -m infratech.images run IMAGE [--variant V] [--bind HOST:DIR] -- COMMAND ...
                                                    COMMAND in the image: its user, env, read-only root, /tmp

IMAGE is train, eval or serve (default: all three). Exit codes: 0 success, 2 bad input, 3 a tool
(buildah, debootstrap, pip) missing or failing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import build, lock, rootfs, spec
from .runner import RunError, run_in_image

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infratech.images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("lock", "build"):
        sp = sub.add_parser(name)
        sp.add_argument("--variant", choices=spec.VARIANTS, default="cpu")
        sp.add_argument("images", nargs="*", choices=[[], *spec.IMAGES], default=[])
        if name == "build":
            sp.add_argument("--dry-run", action="store_true", help="print the steps; build, fetch and write nothing")
    r = sub.add_parser("run")
    r.add_argument("image", choices=list(spec.IMAGES))
    r.add_argument("--variant", choices=spec.VARIANTS, default="cpu")
    r.add_argument("--bind", action="append", default=[], help="HOST:DIR, writable in the container")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    keys = getattr(args, "images", None) or list(spec.IMAGES)
    try:
        if args.command == "lock":
            for key in keys:
                image = spec.get(key)
                source = image.requirements(ROOT, args.variant)
                index = spec.INDEX[args.variant]
                pins = lock.resolve(source, image.exclude, index)
                lock.write(image.lock(ROOT, args.variant), pins, source, image.exclude, index)
                print(image.lock(ROOT, args.variant))
            tools = ROOT / "images" / "build-requirements.in"
            lock.write(ROOT / build.BUILD_LOCK, lock.resolve(tools), tools, ())
            return 0
        if args.command == "build":
            plan = build.Plan() if args.dry_run else None
            log = (lambda msg: print(f"# {msg}", file=sys.stderr)) if plan else print
            build.build(keys, args.variant, ROOT, ROOT / "build" / "images", log=log, b=plan)
            if plan is not None:
                print("\n".join(plan.lines()))
            return 0
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        return run_in_image(spec.get(args.image).local_ref(args.variant), command, binds=args.bind).returncode
    except lock.LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (build.BuildError, rootfs.RootfsError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
