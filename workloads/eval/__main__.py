"""Evaluate a model directory, and optionally run the promotion gate on the results.

    python -m workloads.eval MODEL [--suite NAME|FILE] [--tasks T[:SHOTS],...] [--backend hf|vllm]
                                   [--heldout DATASET] [--gate THRESHOLDS [--registry LOCATION]]
                                   [--output LOCATION] [--cache DIR]
    python -m workloads.eval --list-suites

MODEL is a Hugging Face directory (what ``workloads.train`` exports), local or an ``s3://`` prefix
(copied into ``--cache`` first). Results go to ``evaluation/results.json`` and ``report.md``
inside it; with ``--gate`` the verdict goes to ``promotion.json`` beside them (see
``python -m workloads.gate``). ``--output`` sends that evidence elsewhere (default: beside the
model, where serving looks for it). Exit 0 once the evidence is written, whatever the verdict;
2 on bad input.

CPU (the tiny model of ``make pipeline``, under a minute)::

    python -m workloads.eval build/pipeline/models/debug_tiny-step-000000040 \\
        --suite cpu_smoke --heldout build/pipeline/data/heldout --gate debug_tiny

One GPU, the release suite (the llm-eval chart's Job; upstream datasets pre-cached on a volume)::

    HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 python -m workloads.eval \\
        --checkpoint=s3://@checkpoints/team/lucie-7b/export --suite=french --backend=vllm \\
        --heldout=s3://@datasets/packed/fr-heldout-4k --gate=/etc/infratech/gate/gate.yaml
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

from .. import objectstore
from ..errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="Hugging Face model directory or s3:// prefix")
    p.add_argument("--checkpoint", help="same as MODEL (the llm-eval chart's spelling)")
    p.add_argument("--suite", default="cpu_smoke", help="shipped suite name or YAML path (default cpu_smoke)")
    p.add_argument("--tasks", help="replace the suite's tasks: name[:shots],... (e.g. infratech_french_bench_mc:5,arc_fr:25)")
    p.add_argument("--backend", choices=["hf", "vllm"], help="default: the suite's")
    p.add_argument("--heldout", help="prepared dataset (directory or s3:// prefix) for held-out perplexity")
    p.add_argument("--heldout-shard", type=int, help="score only this shard (default: all, to the suite's cap)")
    p.add_argument("--limit", type=int, help="items per task: a quick look, never evidence for promotion")
    p.add_argument("--gate", help="thresholds (shipped name or YAML path): decide promotion after evaluating")
    p.add_argument("--registry", help="promotion history for regressions (default: 'promotions' beside MODEL)")
    p.add_argument("--output", help="where evaluation/ and promotion.json go (default: inside MODEL)")
    p.add_argument("--cache", default="build/eval-cache", help="local copies of s3:// models")
    p.add_argument("--list-suites", action="store_true")
    return p


def _suite(args):
    from . import suites

    suite = suites.load(args.suite)
    if args.tasks:
        tasks = []
        for item in filter(None, (t.strip() for t in args.tasks.split(","))):
            name, _, shots = item.partition(":")
            if shots and not shots.isdigit():
                raise UserError(f"--tasks {item!r}: shots must be a number (name:shots)")
            tasks.append({"name": name, "num_fewshot": int(shots) if shots else None})
        suite = suites.Suite.model_validate({**suite.model_dump(), "tasks": tasks})
    return suite


def _local(location: str, cache: str) -> Path:
    if not objectstore.is_remote(location):
        return Path(location)
    dest = Path(cache) / hashlib.sha256(location.encode()).hexdigest()[:16]
    shutil.rmtree(dest, ignore_errors=True)
    n = objectstore.download_dir(location, dest)
    if not n:
        raise UserError(f"{location}: no files")
    print(f"eval: copied {n} files of {location} to {dest}", file=sys.stderr)
    return dest


def _thresholds(spec: str, suite_name: str):
    from ..gate import thresholds

    th, source = thresholds.load(spec)
    if not source["content"]:  # an empty file (the chart's default): the thresholds shipped for the suite
        default = {"cpu_smoke": "debug_tiny", "french": "french_7b"}.get(suite_name)
        if default is None:
            raise UserError(f"thresholds {spec} are empty and suite {suite_name} has no shipped thresholds")
        th, source = thresholds.load(default)
        source["note"] = f"{spec} was empty: the thresholds shipped for suite {suite_name}"
    return th, source


def _publish_evidence(local: Path, output: str) -> None:
    from ..gate import PROMOTION_FILE
    from . import RESULTS_DIR

    names = [p for p in sorted((local / RESULTS_DIR).glob("*")) if p.is_file()]
    if (local / PROMOTION_FILE).is_file():
        names.append(local / PROMOTION_FILE)  # last: its presence means the evidence is complete
    for path in names:
        rel = path.relative_to(local).as_posix()
        if objectstore.is_remote(output):
            objectstore.upload(path, objectstore.join(output, rel))
        else:
            (Path(output) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(output) / rel)
    print(f"eval: evidence written to {output}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # a template that renders an unset option as "" (the llm-eval chart's `{{ with }}` lines) adds nothing
    args = _parser().parse_args([a for a in (sys.argv[1:] if argv is None else argv) if a != ""])
    try:
        from . import suites

        if args.list_suites:
            for name in suites.available():
                s = suites.load(name)
                print(f"{name:<12} {s.backend:<5} {s.description}")
            return 0
        location = args.model or args.checkpoint
        if not location:
            raise UserError("a model is required (MODEL or --checkpoint), or --list-suites")
        suite = _suite(args)
        gate = _thresholds(args.gate, suite.name) if args.gate else None  # bad thresholds fail before hours of eval
        local = _local(location, args.cache)
        from .evaluate import evaluate

        res = evaluate(local, suite, backend=args.backend, heldout=args.heldout, heldout_shard=args.heldout_shard,
                       limit=args.limit, log=lambda m: print(m, file=sys.stderr, flush=True))
        for name, s in res["scores"].items():
            print(f"{name:<40} {s['value']}")
        if gate:
            from ..gate.decide import decide
            from ..gate.registry import Registry, default_location

            registry = args.registry or default_location(location)
            verdict = decide(local, gate[0], gate[1], Registry(registry))
            for c in verdict["checks"]:
                print(f"{'pass' if c['passed'] else 'FAIL'}  {c['rule']:<15} {c['detail']}")
            print(f"gate: {verdict['verdict']} (registry {registry})")
        output = args.output or location
        if objectstore.is_remote(output) or Path(output).resolve() != local.resolve():
            _publish_evidence(local, output)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
