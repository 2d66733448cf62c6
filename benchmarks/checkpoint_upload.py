"""Step time while a checkpoint uploads in the background, against step time without an upload.

Two gloo processes train ``debug_tiny`` on CPU under torchrun and checkpoint every ``--every``
steps to a slow S3 stand-in: moto's S3 server behind ``tests/workloads/s3_standin.py``, which reads
request bodies at ``--mbps`` MB/s, so each checkpoint (about 2.7 MB) takes many steps to upload.
The trainer talks to it with its real boto3 client. Every metrics line says whether an upload was
in flight when the step ended (``checkpoint_uploading``):

- *during an upload*: steps that ended with an upload in flight that had started before them;
- *without one*: steps that ended with none in flight, after a step that also ended with none;

both from the same run, interleaved, so the machine's other load weighs on both alike (two
separate runs, with and without ``checkpoint.upload``, differ by more than 10% on a shared machine
from the load alone). The target is a ratio of medians <= 1.10. Each upload's duration is read from
``train.log``: before uploads moved off the critical path, every rank waited that long in each save.

    python benchmarks/checkpoint_upload.py                          # print only (about 3 minutes)
    python benchmarks/checkpoint_upload.py --out docs/benchmarks.md # also rewrite its section
    python benchmarks/checkpoint_upload.py --strict                 # exit 1 if the target does not hold
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from docsection import write_section  # beside this file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "workloads"))  # the S3 stand-in the tests use

BEGIN, END = "<!-- checkpoint_upload:begin (written by benchmarks/checkpoint_upload.py --out) -->", \
    "<!-- checkpoint_upload:end -->"
TARGET = 1.10
UPLOADED = re.compile(r"uploaded (step-\d+), complete in object storage at step (\d+) \(([\d.]+)s, "
                      r"(?:steps (\d+)-(\d+) trained meanwhile|no step trained meanwhile)\)")


def _dataset(where: Path) -> Path:
    from workloads.data import synthetic
    from workloads.data.prepare import prepare
    from workloads.train import recipes

    cfg = recipes.get("debug_tiny")
    syn = cfg.data.synthetic
    corpus = synthetic.write_jsonl(where / "src" / "corpus.jsonl", syn.documents, cfg.run.seed)
    prepare([str(corpus)], str(where / "packed"), vocab_size=syn.vocab_size, seq_len=cfg.train.seq_len,
            sequences_per_shard=syn.sequences_per_shard, log=lambda _: None)
    return where / "packed"


def _train(run: Path, data: Path, args, extra_env: dict, *overrides: str) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "workloads.train", "--recipe", "debug_tiny", f"run.dir={run}", f"data.path={data}",
           f"train.steps={args.steps}", f"checkpoint.every={args.every}", "export.at_end=false", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT), **extra_env)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _split(records: list[dict], warmup: int) -> tuple[list[float], list[float]]:
    by_step = {r["step"]: r for r in records}
    during, without = [], []
    for step, r in sorted(by_step.items()):
        prev = by_step.get(step - 1)
        if step <= warmup or prev is None:
            continue
        if r["checkpoint_uploading"] and prev["checkpoint_uploading"]:
            during.append(r["step_time_s"])  # the upload started before this step, still running at its end
        elif not r["checkpoint_uploading"] and not prev["checkpoint_uploading"]:
            without.append(r["step_time_s"])
    return during, without


def measure(args) -> dict:
    from s3_standin import SlowS3

    with tempfile.TemporaryDirectory(prefix="ckpt-upload-bench-") as work:
        work = Path(work)
        data = _dataset(work / "data")
        load = os.getloadavg()
        with SlowS3(bytes_per_s=args.mbps * 1e6) as s3:
            t0 = time.perf_counter()
            uploading = _train(work / "upload", data, args, s3.env(), "checkpoint.upload=s3://@checkpoints/bench")
            wall = time.perf_counter() - t0
            log = (work / "upload" / "train.log").read_text()
    during, without = _split(uploading, args.warmup)
    uploads = [{"name": m[1], "seconds": float(m[3]), "steps": (int(m[5]) - int(m[4]) + 1) if m[4] else 0}
               for m in UPLOADED.finditer(log)]
    return {"during": during, "without": without, "uploads": uploads, "wall": wall,
            "load": load, "args": vars(args)}


def _machine(load) -> str:
    import torch

    return (f"{os.cpu_count()} CPUs, no GPU; Python {platform.python_version()}, torch {torch.__version__}; "
            f"{time.strftime('%Y-%m-%d')}; load average before the run {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


def report(res: dict) -> tuple[str, bool]:
    a = res["args"]
    med = {k: statistics.median(res[k]) for k in ("during", "without")}
    ratio = med["during"] / med["without"]
    ok = ratio <= TARGET
    ups = res["uploads"]
    lines = [BEGIN, "## Checkpoint upload off the critical path", "",
             "```sh", f"python benchmarks/checkpoint_upload.py --steps {a['steps']} --every {a['every']} "
             f"--mbps {a['mbps']:g} --out FILE", "```", "",
             f"Machine: {_machine(res['load'])}. debug_tiny, 2 gloo processes (FSDP2), a checkpoint every "
             f"{a['every']} steps to the slow S3 stand-in (moto's S3 server reading request bodies at "
             f"{a['mbps']:g} MB/s), {a['warmup']} warm-up steps excluded; step times from `metrics.jsonl`.", "",
             "| steps | how many | median step time |", "|---|---:|---:|",
             f"| during an upload (same run) | {len(res['during'])} | {med['during'] * 1000:.1f} ms |",
             f"| without an upload (same run, interleaved) | {len(res['without'])} | {med['without'] * 1000:.1f} ms |",
             "", f"**Ratio during / without: {ratio:.3f}** (target <= {TARGET:.2f}: {'met' if ok else 'NOT met'}). "
             f"Whole run: {res['wall']:.0f} s.", "",
             "Uploads (from `train.log`): " + ", ".join(
                 f"{u['name']} {u['seconds']:.1f} s ({u['steps']} steps trained meanwhile)" for u in ups) + ". "
             "Before this change every rank waited that long inside each save.", "", END]
    return "\n".join(lines), ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    p.add_argument("--every", type=int, default=25, help="steps between checkpoints (default 25)")
    p.add_argument("--mbps", type=float, default=0.5, help="the stand-in's upload rate in MB/s (default 0.5)")
    p.add_argument("--warmup", type=int, default=5, help="first steps excluded (default 5)")
    p.add_argument("--timeout", type=int, default=600, help="seconds for the training run (default 600)")
    p.add_argument("--out", type=Path, help="rewrite this file's checkpoint_upload section")
    p.add_argument("--strict", action="store_true", help="exit 1 when the target does not hold")
    args = p.parse_args(argv)
    res = measure(args)
    section, ok = report(res)
    print(section)
    if args.out:
        write_section(args.out, section, BEGIN, END)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
