"""Serve a promoted model with vLLM's OpenAI-compatible server, configured by a serving profile.

    python -m workloads.serve MODEL --profile cpu|l4|l40s|h100|FILE [--served-name NAME] [--force]
                              [--port N] [--host H] [--api-key-file F] [--cache DIR] [--log FILE]
                              [--print-command]
    python -m workloads.serve fetch s3://BUCKET/PREFIX --dest DIR
    python -m workloads.serve --list-profiles

MODEL is a Hugging Face directory or an ``s3://`` prefix published by ``python -m workloads.gate
publish`` (fetched into ``--cache``, every file checked against the sha256 the gate recorded).
A model without a positive verdict in ``promotion.json`` is refused, with the gate's reasons,
unless ``--force``. The API key comes from ``--api-key-file``, ``$VLLM_API_KEY`` or the
profile's mounted Secret file; it reaches vLLM through its environment, never its command line.
The launcher stays in the foreground, forwards SIGTERM/SIGINT to vLLM and exits with its code.

CPU (``make serve-env`` first: vLLM's CPU build lives in its own virtualenv)::

    VLLM_API_KEY=$(cat build/pipeline/api-key) python -m workloads.serve \\
        build/pipeline/models/debug_tiny-step-000000040 --profile cpu --served-name debug-tiny

One H100, from object storage (the container's entry point; vLLM is in the image)::

    python -m workloads.serve s3://@checkpoints/models/lucie-7b-step-750000 --profile h100 \\
        --served-name lucie-7b --cache /models
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model directory or s3:// prefix (or 'fetch')")
    p.add_argument("source", nargs="?", help="with 'fetch': the s3:// prefix")
    p.add_argument("--profile", default="cpu", help="cpu, l4, l40s, h100 or a YAML path (default cpu)")
    p.add_argument("--served-name", help="the name clients send as `model` (default: profile's, or the directory's)")
    p.add_argument("--force", action="store_true", help="serve even if the gate did not promote it")
    p.add_argument("--port", type=int)
    p.add_argument("--host")
    p.add_argument("--api-key-file", help="file holding the API key (default $VLLM_API_KEY or the profile's)")
    p.add_argument("--cache", default="build/serve-cache", help="local cache of s3:// models")
    p.add_argument("--dest", help="with 'fetch': the directory to fill")
    p.add_argument("--vllm-python",
                   help="the Python that has vLLM (default: $INFRATECH_VLLM_PYTHON, .venv-serve, this one)")
    p.add_argument("--log", help="vLLM's output to this file (default: this terminal)")
    p.add_argument("--print-command", action="store_true", help="check everything, print the vLLM command, exit")
    p.add_argument("--list-profiles", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from . import profile as prof

        if args.list_profiles:
            for name in prof.available():
                print(f"{name:<6} {prof.load(name).description}")
            return 0
        if args.model == "fetch":
            from .fetch import fetch

            if not args.source or not args.dest:
                raise UserError("fetch needs the s3:// prefix and --dest DIR")
            print(fetch(args.source, args.dest, exact=True))
            return 0
        if not args.model:
            raise UserError("MODEL is required (a directory or an s3:// prefix), or --list-profiles")
        from .launcher import Server, plan

        profile = prof.load(args.profile, port=args.port, host=args.host)
        p = plan(args.model, profile, served_name=args.served_name, force=args.force, cache_dir=args.cache,
                 api_key_file=args.api_key_file, python=args.vllm_python,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
        for note in p.notes:
            print(f"serve: NOTE {note}", file=sys.stderr, flush=True)
        if args.print_command:
            print(p.shown())
            return 0
        server = Server(p, log_path=args.log)
        server.start()

        def forward(signum, _frame):
            server.stop()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        seconds = server.wait_ready()
        print(f"serve: {p.served_name} ready at {p.base_url}/v1 after {seconds}s "
              f"({'promoted' if p.promoted else 'NOT promoted, forced'}; profile {profile.name})",
              file=sys.stderr, flush=True)
        return server.proc.wait()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
