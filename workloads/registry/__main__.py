"""Command line of the registry; see the package docstring."""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from . import __doc__ as DOC


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.registry", description=DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("publish", help="store a promoted checkpoint, content-addressed, with its cards")
    u.add_argument("source", help="a run directory (its export/) or an exported model directory")
    u.add_argument("--repo", required=True, help="ORG/NAME, as Hugging Face clients will name it")
    u.add_argument("--store", required=True, help="s3://BUCKET/PREFIX (s3://@checkpoints/registry) or a directory")
    u.add_argument("--run-dir", help="the training run's directory, for the lineage (default: SOURCE when it is "
                                     "one, or the directory whose export/ SOURCE is)")
    u.add_argument("--license", required=True, help="the model's licence, an SPDX id (Apache-2.0, CC-BY-4.0, ...); "
                                                   "the card gets the Hub's id for it")
    u.add_argument("--language", action="append", default=[], help="ISO 639 code, repeatable (fr, en)")
    u.add_argument("--dataset", action="append", default=[], help="a dataset name for the card, repeatable")
    u.add_argument("--base-model", help="the model this one was trained from (default: the run's model.init_from)")
    u.add_argument("--provider", help="who places the model on the market (the AI Act summary's part 1)")
    s = sub.add_parser("serve", help="serve the store read-only with the Hub's download API")
    s.add_argument("--store", required=True)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from .store import Store

        store = Store(args.store)
        if args.command == "publish":
            from .publish import publish

            publish(args.source, args.repo, store, run_dir=args.run_dir, license=args.license,
                    languages=args.language, datasets=args.dataset, base_model=args.base_model,
                    provider=args.provider)
            return 0
        if not 0 <= args.port <= 65535:
            raise UserError(f"--port {args.port}: expected 0 to 65535")
        from .server import serve

        serve(store, args.host, args.port)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
