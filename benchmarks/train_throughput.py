"""Training throughput: tokens/s and MFU of our trainer, and of torchtitan on the same model, in one run.

GPU (one command, under 8 minutes on one H100/H200): ``llama_1b`` (~1.1B, seq 4096, micro-batch 4),
bf16, FSDP2 + torch.compile, no activation checkpointing; then torchtitan's own Llama 3 model code
and ``parallelize_llama`` (FSDP2 + per-block compile, flex attention) with the same shape and
vocabulary, driven by the same minimal loop (AdamW, random tokens). Both MFUs use one formula
(``workloads.train.model.flops_per_token``) and the device's dense bf16 peak::

    python benchmarks/train_throughput.py --out docs/benchmarks.md
    python benchmarks/train_throughput.py --steps 30 --no-torchtitan       # ours only
    python benchmarks/train_throughput.py --no-torchtitan --override train.activation_checkpointing=true

CPU (what CI can run): the ``debug_tiny`` recipe with one process and with two gloo processes
sharding it; torchtitan is skipped (its language models need flex attention on CUDA)::

    python benchmarks/train_throughput.py --device cpu

Each case runs in its own ``torchrun`` process group, with random tokens packed as a dataset, so no
data or weights are downloaded. Warm-up steps (compile, allocator) are excluded: figures are the
median over the measured steps. ``--out FILE`` rewrites the section between the
``train_throughput`` markers of FILE (appended when absent); the rest of the file is untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BEGIN, END = "<!-- train_throughput:begin (written by benchmarks/train_throughput.py --out) -->", \
    "<!-- train_throughput:end -->"


# ---- workers (run under torchrun) ------------------------------------------------------------
def _random_dataset(where: Path, vocab: int, seq_len: int, sequences: int, seed: int = 0) -> str:
    import numpy as np

    from workloads.data.shards import FORMAT, ShardWriter, dtype_for, write_manifest

    writer = ShardWriter(where, seq_len, sequences_per_shard=sequences, vocab_size=vocab)
    rng = np.random.default_rng(seed)
    for _ in range(sequences):
        writer.add(rng.integers(0, vocab, size=seq_len).tolist())
    totals = writer.close()
    write_manifest(where, {"format": FORMAT, "seq_len": seq_len, "dtype": dtype_for(vocab), "vocab_size": vocab,
                           "shards": writer.shards, "totals": totals, "tokenizer": None})
    return str(where)


def worker_ours(args) -> dict:
    from workloads.train import recipes
    from workloads.train.config import apply_overrides, validate
    from workloads.train.distributed import setup, teardown
    from workloads.train.model import param_dtype
    from workloads.train.trainer import Trainer

    base = recipes.get(args.recipe)
    tree = base.model_dump(mode="json")
    work = Path(args.workdir)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps = args.warmup + args.steps
    tree["run"]["dir"] = str(work / "run")
    tree["data"].update(path=str(work / "data"), synthetic=None, verify=False)
    tree["train"].update(steps=steps, grad_accum=1, global_batch=None, warmup_steps=min(base.train.warmup_steps, 2))
    if args.device != "auto":
        tree["train"]["device"] = args.device
    tree["checkpoint"].update(every=10**9, at_end=False)
    tree["export"]["at_end"] = False
    tree["metrics"]["log_every"] = 1
    cfg = apply_overrides(validate(tree), args.override)
    seqs = steps * cfg.train.micro_batch_size * cfg.train.accumulation(world) * world + 8
    if int(os.environ.get("RANK", "0")) == 0:
        _random_dataset(work / "data", cfg.model.arch.vocab_size, cfg.train.seq_len, seqs)
    d = setup(cfg.train.device, sharding=cfg.train.sharding)
    d.barrier()  # rank 0 wrote the dataset before joining
    t0 = time.perf_counter()
    Trainer(cfg, d).fit()
    wall = time.perf_counter() - t0
    teardown()
    records = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    bf16 = param_dtype(cfg, d.device) is not None
    return _summary("ours", cfg.model.arch, cfg.train.seq_len, cfg.train.micro_batch_size, world, records,
                    args.warmup, wall, f"{args.recipe}: FSDP2, " + ("bf16" if bf16 else "fp32")
                    + (", compile" if cfg.train.compile else "")
                    + (", activation checkpointing" if cfg.train.activation_checkpointing else "")
                    + (f", {cfg.train.accumulation(world)} micro-batches per step" if cfg.train.accumulation(world) > 1
                       else ""))


def worker_torchtitan(args) -> dict:
    """torchtitan's Llama 3 "1B" model config with our vocabulary, its parallelize_llama (FSDP2,
    compile per block, bf16 params / fp32 reduce), its init_weights; our minimal loop."""
    import dataclasses

    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torchtitan.config import CompileConfig, ParallelismConfig, TrainingConfig
    from torchtitan.distributed import ParallelDims
    from torchtitan.models.llama3 import model_registry, parallelize_llama

    from workloads.train import recipes

    ours = recipes.get(args.recipe)
    arch, seq_len, mbs = ours.model.arch, ours.train.seq_len, ours.train.micro_batch_size
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank)
    dist.init_process_group("nccl", device_id=device)
    world = dist.get_world_size()
    mcfg = model_registry("1B", attn_backend="flex").model
    v = arch.vocab_size
    mcfg = dataclasses.replace(mcfg, vocab_size=v,
                               tok_embeddings=dataclasses.replace(mcfg.tok_embeddings, num_embeddings=v),
                               lm_head=dataclasses.replace(mcfg.lm_head, out_features=v))
    with torch.device("meta"):
        model = mcfg.build()
    pdims = ParallelDims(dp_replicate=1, dp_shard=world, cp=1, tp=1, pp=1, ep=1, world_size=world,
                         spmd_backend="partial_dtensor")
    pdims.build_mesh()
    model = parallelize_llama(
        model, parallel_dims=pdims,
        training=TrainingConfig(local_batch_size=mbs, seq_len=seq_len, mixed_precision_param="bfloat16",
                                mixed_precision_reduce="float32"),
        parallelism=ParallelismConfig(spmd_backend="partial_dtensor"),
        compile_config=CompileConfig(enable=True, components=["model"]),
        ac_config=None, dump_folder=args.workdir)
    model.to_empty(device=device)
    with torch.no_grad():
        model.init_weights(buffer_device=None)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    gen = torch.Generator(device="cpu").manual_seed(0)
    positions = torch.arange(seq_len, device=device).expand(mbs, seq_len)
    masks = model.get_attention_masks(positions=positions)
    records = []
    for step in range(1, args.warmup + args.steps + 1):
        x = torch.randint(0, v, (mbs, seq_len), generator=gen).to(device, non_blocking=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        logits = model(x, positions=positions, attention_masks=masks)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, v), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        records.append({"step": step, "loss": loss.item(), "tokens_per_s_per_device": mbs * seq_len / dt,
                        "mem_max_alloc_gib": torch.cuda.max_memory_allocated(device) / 2**30})
    dist.destroy_process_group()
    return _summary("torchtitan", arch, seq_len, mbs, world, records, args.warmup, None,
                    f"torchtitan llama3 1B @ vocab {v}: FSDP2, bf16, compile, flex attention "
                    f"({n_params:,} params incl. tied head)")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _summary(impl, arch, seq_len, mbs, world, records, warmup, wall, setup) -> dict:
    from workloads.train.metrics import device_name, peak_flops
    from workloads.train.model import count_params, flops_per_token

    import torch

    dev = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    name = device_name(dev)
    peak, source = peak_flops(name)
    measured = [r for r in records if r["step"] > warmup] or records
    tps = statistics.median(r["tokens_per_s_per_device"] for r in measured)
    fpt = flops_per_token(arch, seq_len)
    mem = max((r.get("mem_max_alloc_gib") or r.get("mem_max_rss_gib") or 0) for r in records)
    return {"impl": impl, "setup": setup, "device": name, "world": world, "params": count_params(arch)["total"],
            "seq_len": seq_len, "micro_batch": mbs, "steps_measured": len(measured), "warmup": warmup,
            "tokens_per_s_per_device": round(tps, 1), "flops_per_token": fpt,
            "mfu": round(tps * fpt / peak, 4) if peak else None, "peak_flops": peak, "peak_source": source,
            "first_step_s": round(records[0]["step_time_s"], 2) if records and "step_time_s" in records[0] else None,
            "loss_first_last": [round(records[0]["loss"], 3), round(records[-1]["loss"], 3)] if records else None,
            "mem_gib": round(mem, 2), "wall_s": round(wall, 1) if wall else None}


# ---- driver ----------------------------------------------------------------------------------
def _launch(kind: str, nproc: int, args, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as work:
        out = Path(work) / "result.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               __file__, "--worker", kind, "--workdir", work, "--result", str(out), "--recipe", args.recipe,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device,
               *(f"--override={o}" for o in args.override)]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONPATH=str(ROOT)
                   + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"impl": kind, "error": f"timed out after {timeout}s"}
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout)[-1500:]
            return {"impl": kind, "error": f"exit {proc.returncode}: ...{tail}"}
        result = json.loads(out.read_text())
        result["process_wall_s"] = round(time.perf_counter() - t0, 1)
        return result


def _table(results: list[dict]) -> str:
    rows = ["| implementation | setup | device x procs | tokens/s per device | MFU | peak mem (GiB) | first step (s) | wall (s) |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['impl']} | failed: {r['error'].splitlines()[-1][:160]} | | | | | | |")
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a (no peak)"
        rows.append(f"| {r['impl']} | {r['setup']} | {r['device']} x {r['world']} | {r['tokens_per_s_per_device']:,.0f} "
                    f"| {mfu} | {r['mem_gib']} | {r['first_step_s'] or ''} | {r['process_wall_s']} |")
    return "\n".join(rows)


def _machine(load_before) -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = ", ".join(f"{x:.1f}" for x in load_before)
    return (f"{os.cpu_count()} CPUs, {gpu}; Python {platform.python_version()}, torch {torch.__version__}; "
            f"{time.strftime('%Y-%m-%d')}; load average before the run {load}")


def _section(results: list[dict], args, wall: float) -> str:
    cmd = "python benchmarks/train_throughput.py" + (" --device cpu" if args.device == "cpu" else "") + " --out FILE"
    ok = [r for r in results if "error" not in r]
    peak = next((r for r in ok if r.get("peak_source")), None)
    lines = [BEGIN, "## Training throughput (tokens/s, MFU)", "", "```sh", cmd, "```", "",
             (f"Machine: {_machine(args.load_before)}. Whole run: {wall:.0f} s. {args.warmup} warm-up steps excluded, median of "
              f"{args.steps} measured steps."), "", _table(results), ""]
    if peak:
        lines.append(f"MFU = tokens/s per device x {peak['flops_per_token']:.3e} FLOPs/token / "
                     f"{peak['peak_flops']:.3e} FLOP/s ({peak['peak_source']}).")
    else:
        lines.append("No MFU on CPU: there is no honest dense peak to divide by.")
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN.split(" (")[0] in text and END in text:
        head = text[: text.index(BEGIN.split(" (")[0])]
        tail = text[text.index(END) + len(END):]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--recipe", help="default: llama_1b on GPU, debug_tiny on CPU")
    p.add_argument("--steps", type=int, help="measured steps (default 20 on GPU, 10 on CPU)")
    p.add_argument("--warmup", type=int, help="excluded first steps (default 5 on GPU, 3 on CPU)")
    p.add_argument("--nproc", type=int, help="processes (default: 1 GPU; on CPU both 1 and 2)")
    p.add_argument("--no-torchtitan", action="store_true")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe override for our rows, e.g. train.activation_checkpointing=true (repeatable)")
    p.add_argument("--timeout", type=int, default=220, help="seconds per case (default 220)")
    p.add_argument("--out", type=Path, help="rewrite this file's train_throughput section")
    p.add_argument("--worker", choices=["ours", "torchtitan"], help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = (worker_ours if args.worker == "ours" else worker_torchtitan)(args)
        if int(os.environ.get("RANK", "0")) == 0:
            Path(args.result).write_text(json.dumps(result))
        return 0
    gpu = args.device == "cuda" or (args.device == "auto" and _cuda())
    args.device = "cuda" if gpu else "cpu"
    args.recipe = args.recipe or ("llama_1b" if gpu else "debug_tiny")
    args.steps = args.steps or (20 if gpu else 10)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 3)
    args.load_before = os.getloadavg()  # 1/5/15-minute load: other work on the machine skews CPU figures
    t0 = time.perf_counter()
    results = []
    for n in ([args.nproc] if args.nproc else ([1] if gpu else [1, 2])):
        results.append(_launch("ours", n, args, args.timeout))
    if gpu and not args.no_torchtitan:
        results.append(_launch("torchtitan", args.nproc or 1, args, args.timeout))
    wall = time.perf_counter() - t0
    print(_table(results))
    print(json.dumps(results, indent=1))
    if args.out:
        write_section(args.out, _section(results, args, wall))
        print(f"wrote the train_throughput section of {args.out}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
