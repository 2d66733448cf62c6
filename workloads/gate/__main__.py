"""The promotion gate.

    python -m workloads.gate decide MODEL_DIR --thresholds NAME|FILE [--registry DIR|s3://...]
    python -m workloads.gate status MODEL_DIR
    python -m workloads.gate publish MODEL_DIR s3://BUCKET/PREFIX [--force]

``decide`` reads ``MODEL_DIR/evaluation/results.json`` (``python -m workloads.eval``), checks the
thresholds and writes ``MODEL_DIR/promotion.json`` with the verdict and every check; exit 0 when
promoted, 1 when rejected (the reasons are printed). The baseline for regressions is the last
checkpoint promoted in ``--registry`` (default: ``promotions`` beside the model directory). ``status`` says whether a
directory may be served (exit 0) or why not (exit 1). ``publish`` uploads a promoted directory to
object storage for ``workloads.serve`` (``promotion.json`` last: its presence means complete).

CPU, the tiny model::

    python -m workloads.gate decide build/pipeline/models/debug_tiny-step-000000040 \\
        --thresholds debug_tiny --registry build/pipeline/promotions

Cluster (in the evaluation Job, after ``workloads.eval``)::

    python -m workloads.gate decide /models/lucie-7b-step-750000 --thresholds french_7b \\
        --registry s3://@checkpoints/promotions/lucie-7b
    python -m workloads.gate publish /models/lucie-7b-step-750000 s3://@checkpoints/models/lucie-7b-step-750000
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.gate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decide", help="check thresholds, write promotion.json")
    d.add_argument("model")
    d.add_argument("--thresholds", required=True, help="shipped name (debug_tiny, french_7b) or YAML path")
    d.add_argument("--registry", help="promotion history (default: 'promotions' beside the model directory)")
    s = sub.add_parser("status", help="may this directory be served?")
    s.add_argument("model")
    u = sub.add_parser("publish", help="upload a promoted directory to object storage")
    u.add_argument("model")
    u.add_argument("destination", help="s3://BUCKET/PREFIX (s3://@checkpoints/... names the platform's bucket)")
    u.add_argument("--force", action="store_true", help="publish even if not promoted (serving will still refuse)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from .decide import decide, status

        if args.command == "decide":
            from .registry import Registry, default_location
            from .thresholds import load

            th, source = load(args.thresholds)
            verdict = decide(args.model, th, source, Registry(args.registry or default_location(args.model)))
            for c in verdict["checks"]:
                print(f"{'pass' if c['passed'] else 'FAIL'}  {c['rule']:<15} {c['detail']}")
            print(f"{verdict['verdict']}: {args.model}/promotion.json")
            return 0 if verdict["verdict"] == "promoted" else 1
        if args.command == "status":
            ok, reasons, _ = status(args.model)
            print(f"{args.model}: promoted" if ok else f"{args.model}: not servable\n  " + "\n  ".join(reasons))
            return 0 if ok else 1
        from .. import objectstore
        from . import PROMOTION_FILE

        if not objectstore.is_remote(args.destination):
            raise UserError(f"publish destination {args.destination}: expected s3://BUCKET/PREFIX")
        ok, reasons, _ = status(args.model)
        if not ok and not args.force:
            raise UserError("not published, the model may not be served: " + "; ".join(reasons)
                            + " (--force publishes anyway)")
        from pathlib import Path

        if not (Path(args.model) / PROMOTION_FILE).is_file():
            raise UserError(f"{args.model}: no {PROMOTION_FILE}; serving from object storage verifies each file "
                            "against the digests it records, so run the gate first (even a rejection records them)")
        n = objectstore.upload_dir(args.model, args.destination, last=(PROMOTION_FILE,))
        print(f"published {n} files to {args.destination}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
