"""Serve a promoted model with vLLM's OpenAI-compatible server, configured by a serving profile.

    python -m workloads.serve MODEL --profile cpu|l4|l40s|h100|FILE [--served-name NAME]
                              [--force-unpromoted REASON] [--port N] [--host H]
                              [--tensor-parallel-size N] [--startup-timeout S]
                              [--api-key-file F] [--cache DIR] [--log FILE] [--print-command]
    python -m workloads.serve fetch s3://BUCKET/PREFIX --dest DIR [--force-unpromoted REASON]
    python -m workloads.serve --list-profiles

MODEL is a Hugging Face directory or an ``s3://`` prefix holding the model and the gate's
``promotion.json`` (fetched into ``--cache``, every file checked against the sha256 the gate
recorded). A model without a positive verdict, or whose files differ from those the gate judged,
is refused with the gate's reasons, unless ``--force-unpromoted REASON``: the reason is logged on
every start. The API key comes from ``--api-key-file``, ``$VLLM_API_KEY`` or the profile's mounted
Secret file; it reaches vLLM through its environment, never its command line. The launcher stays
in the foreground, forwards SIGTERM/SIGINT to vLLM and exits with its code.

``fetch`` is the same admission without the server: the verified copy into ``--dest``, the same
refusal of an unpromoted model; it exits 0 once the directory may be served. charts/llm-serve
runs it as each replica's init step, then this launcher with ``--profile`` on the copy:

    python -m workloads.serve fetch s3://@checkpoints/team/run/export --dest=/models/model
    python -m workloads.serve /models/model --profile=l40s --served-name=NAME --host=0.0.0.0 \
        --port=8000 --tensor-parallel-size=1 --startup-timeout=900

``--port``, ``--host``, ``--tensor-parallel-size`` and ``--startup-timeout`` replace the profile's
values (where a replica listens, how many GPUs it has, how long its startup probe waits); every
other vLLM flag comes from the profile.

CPU (``make serve-env`` first: vLLM's CPU build lives in its own virtualenv)::

    VLLM_API_KEY=$(cat build/pipeline/api-key) python -m workloads.serve \
        build/pipeline/models/debug_tiny-step-000000040 --profile cpu --served-name debug-tiny

One H100, from object storage (vLLM is in the llm-serve image)::

    python -m workloads.serve s3://@checkpoints/models/lucie-7b-step-750000 --profile h100 \
        --served-name lucie-7b --cache /models
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.serve", description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model directory or s3:// prefix (or 'fetch')")
    p.add_argument("source", nargs="?", help="with 'fetch': the s3:// prefix")
    p.add_argument("--profile", default="cpu", help="cpu, l4, l40s, h100 or a YAML path (default cpu)")
    p.add_argument("--served-name", help="the name clients send as `model` (default: profile's, or the directory's)")
    p.add_argument("--force-unpromoted", metavar="REASON",
                   help="serve even if the gate did not promote it, for this reason (logged)")
    p.add_argument("--port", type=int)
    p.add_argument("--host")
    p.add_argument("--tensor-parallel-size", type=int, help="GPUs of this server (default: the profile's)")
    p.add_argument("--startup-timeout", type=int, metavar="SECONDS",
                   help="seconds vLLM may take to become ready (default: the profile's startup_timeout_s)")
    p.add_argument("--api-key-file", help="file holding the API key (default $VLLM_API_KEY or the profile's)")
    p.add_argument("--cache", default="build/serve-cache", help="local cache of s3:// models")
    p.add_argument("--dest", help="with 'fetch': the directory to fill")
    p.add_argument("--vllm-python",
                   help="the Python that has vLLM (default: $INFRATECH_VLLM_PYTHON, .venv-serve, this one)")
    p.add_argument("--log", help="vLLM's output to this file (default: this terminal)")
    p.add_argument("--print-command", action="store_true", help="check everything, print the vLLM command, exit")
    p.add_argument("--list-profiles", action="store_true")
    return p


def _note(message: str) -> None:
    print(f"serve: NOTE {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    err = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    try:
        from . import profile as prof

        if args.list_profiles:
            for name in prof.available():
                print(f"{name:<6} {prof.load(name).description}")
            return 0
        if args.force_unpromoted is not None and not args.force_unpromoted.strip():
            raise UserError("--force-unpromoted: give the reason an unpromoted model is served (it is logged)")
        if args.model == "fetch":
            from .launcher import prepare

            if not args.source or not args.dest:
                raise UserError("fetch needs the s3:// prefix and --dest DIR")
            if not args.source.startswith("s3://"):
                raise UserError(f"fetch {args.source}: expected an s3:// prefix (a local directory is served as is)")
            local, promoted, notes = prepare(args.source, args.dest, force=args.force_unpromoted, exact=True, log=err)
            for note in notes:
                _note(note)
            err(f"fetch: {args.source} may be served from {local} "
                f"({'promoted' if promoted else 'NOT promoted, forced'}; every file sha256-verified)")
            print(local)
            return 0
        if not args.model:
            raise UserError("MODEL is required (a directory or an s3:// prefix), or --list-profiles")
        from .launcher import Server, plan

        profile = prof.load(args.profile, port=args.port, host=args.host,
                            tensor_parallel_size=args.tensor_parallel_size, startup_timeout_s=args.startup_timeout)
        p = plan(args.model, profile, served_name=args.served_name, force=args.force_unpromoted,
                 cache_dir=args.cache, api_key_file=args.api_key_file, python=args.vllm_python, log=err)
        for note in p.notes:
            _note(note)
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
        err(f"serve: {p.served_name} ready at {p.base_url}/v1 after {seconds}s "
            f"({'promoted' if p.promoted else 'NOT promoted, forced'}; profile {profile.name})")
        return server.proc.wait()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
