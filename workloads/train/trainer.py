"""The training loop: data -> sharded model -> AdamW, with checkpoints, signals and metrics.

One ``Trainer.fit()`` per process; every collective (checkpoint, export, the stop flag) is entered
by all ranks at the same step. Resume is automatic: a run directory with a complete checkpoint
continues from it (model, optimizer, scheduler, data position, RNG), so a crash under
``torchrun --max-restarts`` or a re-launch after preemption picks up where it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from ..data import synthetic
from ..data.prepare import prepare
from ..data.shards import MANIFEST, TOKENIZER_DIR, PackedDataset
from ..errors import UserError
from . import metrics as mx
from . import model as mdl
from . import optim
from .checkpoint import Checkpointer
from .config import TrainingRun
from .distributed import Dist
from .export import logits_of_hf_dir, write_hf_dir
from .loader import Batches

# Test hook: "sigkill:STEP" makes the last rank SIGKILL itself after STEP, on a run's first
# attempt only (TORCHELASTIC_RESTART_COUNT unset or 0): a crash that torchrun --max-restarts heals.
FAULT_ENV = "INFRATECH_TRAIN_FAULT"
# Keys that must not change between launches of one run directory once it has checkpoints.
FIXED_ON_RESUME = ("model.arch.", "train.seq_len", "data.path", "data.synthetic")


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def preflight(cfg: TrainingRun) -> None:
    """Checks that need no process group, so bad input fails in a second with the key's name."""
    from .. import objectstore

    path = cfg.data.path
    if path and not objectstore.is_remote(path):
        if not Path(path).is_dir():
            raise UserError(f"data.path: dataset {path}: no such directory")
        if not (Path(path) / MANIFEST).is_file():
            raise UserError(f"data.path: dataset {path}: no {MANIFEST} (prepare it with python -m workloads.data prepare)")
    if cfg.model.init_from:
        if not Path(cfg.model.init_from).is_dir():
            raise UserError(f"model.init_from: {cfg.model.init_from}: no such directory")
        mdl.check_init_from(cfg.model.init_from, cfg.model.arch)
    for key, uri in (("data.path", path), ("checkpoint.upload", cfg.checkpoint.upload)):
        if uri and objectstore.is_remote(uri):
            try:
                objectstore.split(uri)  # an unset @datasets/@checkpoints variable is named now
            except UserError as exc:
                raise UserError(f"{key}: {exc}") from None


class Trainer:
    def __init__(self, cfg: TrainingRun, d: Dist):
        self.cfg, self.d = cfg, d
        self.run_dir = Path(cfg.run.dir)
        self.ckpt_dir = Path(cfg.checkpoint.dir or self.run_dir / "checkpoints")
        self.export_dir = Path(cfg.export.dir or self.run_dir / "export")
        self._stop = False

    # ---- logging -------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self.d.is_main:
            line = f"[train] {msg}"
            print(line, file=sys.stderr, flush=True)
            with open(self.run_dir / "train.log", "a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    # ---- set-up --------------------------------------------------------------------------------
    def _write_config(self) -> None:
        path = self.run_dir / "config.json"
        new = json.loads(self.cfg.to_json())
        if path.is_file():
            old = _flatten(json.loads(path.read_text()))
            changed = {k: (old.get(k), v) for k, v in _flatten(new).items() if old.get(k) != v}
            has_ckpt = self.ckpt_dir.is_dir() and any(self.ckpt_dir.glob("step-*"))
            fixed = [k for k in changed if k.startswith(FIXED_ON_RESUME)]
            if fixed and has_ckpt:
                what = "; ".join(f"{k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in fixed)
                raise UserError(f"run.dir {self.run_dir} holds checkpoints of a different run ({what}); "
                                "use a new run.dir")
            if changed:
                self.log("config changed since the last launch: "
                         + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        path.write_text(self.cfg.to_json())

    def _write_environment(self, ds) -> None:
        """``environment.json``: what the lineage of a published model needs and only the run knows
        (the code's git commit, the image digest, the world size, the dataset it read)."""
        import subprocess

        commit, dirty = os.environ.get("INFRATECH_GIT_COMMIT") or None, None
        if commit is None:
            src = Path(__file__).resolve().parents[2]
            try:
                head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                                      timeout=10)
                if head.returncode == 0:
                    commit = head.stdout.strip()
                    st = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                                        capture_output=True, text=True, timeout=10)
                    dirty = bool(st.stdout.strip()) if st.returncode == 0 else None
            except (OSError, subprocess.TimeoutExpired):
                pass
        env = {"git_commit": commit, "git_dirty": dirty,
               "image_digest": os.environ.get("INFRATECH_IMAGE_DIGEST") or None,
               "world_size": self.d.world, "device": str(self.d.device), "torch": torch.__version__,
               "dataset": {"location": self.data_location, "manifest_sha256": ds.sha256}}
        (self.run_dir / "environment.json").write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")

    def _dataset_location(self) -> str:
        if self.cfg.data.path:
            return self.cfg.data.path
        syn = self.cfg.data.synthetic
        where = self.run_dir / "data"
        if self.d.is_main and not (where / MANIFEST).is_file():
            corpus = synthetic.write_jsonl(self.run_dir / "data-src" / "corpus.jsonl", syn.documents, self.cfg.run.seed)
            prepare([str(corpus)], str(where), vocab_size=syn.vocab_size, seq_len=self.cfg.train.seq_len,
                    sequences_per_shard=syn.sequences_per_shard, log=self.log,
                    records=[synthetic.record(corpus, syn.documents, self.cfg.run.seed)], name="synthetic-fr-en")
        self.d.barrier()
        return str(where)

    def _open_data(self) -> PackedDataset:
        # every rank makes the same calls (a barrier inside): written down once, for the run's records
        location = self.data_location = self._dataset_location()
        cache = self.cfg.data.cache_dir or self.run_dir / "data-cache"
        ds = PackedDataset(location, cache_dir=cache, verify=self.cfg.data.verify)
        if ds.seq_len != self.cfg.train.seq_len:
            raise UserError(f"train.seq_len is {self.cfg.train.seq_len} but dataset {location} was packed with "
                            f"seq_len {ds.seq_len}; prepare it again or pick a matching recipe")
        vocab = int(ds.manifest["vocab_size"])
        if vocab > self.cfg.model.arch.vocab_size:
            raise UserError(f"dataset {location} uses {vocab} token ids but model.arch.vocab_size is "
                            f"{self.cfg.model.arch.vocab_size}")
        # keep the tokenizer beside the run (checkpoints and export carry it)
        self.tokenizer_dir = self.run_dir / "tokenizer"
        if self.d.is_main and not self.tokenizer_dir.is_dir():
            from .. import objectstore

            if objectstore.is_remote(location):
                objectstore.download_dir(objectstore.join(location, TOKENIZER_DIR), self.tokenizer_dir)
            elif (Path(location) / TOKENIZER_DIR).is_dir():
                import shutil

                shutil.copytree(Path(location) / TOKENIZER_DIR, self.tokenizer_dir)
        self.d.barrier()
        if not self.tokenizer_dir.is_dir():  # e.g. the benchmark's random-token shards
            self.log(f"data: {location} has no {TOKENIZER_DIR}/; checkpoints and export carry no tokenizer")
            self.tokenizer_dir = None
        return ds

    # ---- the loop ------------------------------------------------------------------------------
    def _on_sigterm(self, signum, frame) -> None:
        self._stop = True

    def fit(self) -> int:
        cfg, d = self.cfg, self.d
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if d.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._write_config()
        d.barrier()
        accum = cfg.train.accumulation(d.world)  # a global batch these processes cannot make fails now
        ds = self._open_data()
        self.log(f"data: {len(ds):,} sequences of {ds.seq_len} tokens, manifest sha256 {ds.sha256[:16]}…")
        if d.is_main:
            self._write_environment(ds)
        model = mdl.build(cfg, d, self.log)
        opt, sched = optim.build(model, cfg.train, d.device)
        batches = Batches(ds, cfg.run.seed, cfg.train.micro_batch_size, accum, d.rank, d.world)
        ckpt = Checkpointer(cfg.checkpoint, self.ckpt_dir, d, self.log)
        local = sum(p.to_local().numel() for p in model.parameters())
        total = mdl.count_params(cfg.model.arch)["total"]
        layout = (f"HSDP: sharded over {d.mesh.size(1)}, replicated {d.mesh.size(0)}x" if d.mesh.ndim == 2
                  else f"FSDP2 over {d.world} process(es)")
        self.log(f"model: {total:,} parameters, {layout} on {d.device}, this rank holds {local:,} ({local / total:.1%})")
        est = mdl.memory_estimate(cfg, d.mesh.size(d.mesh.ndim - 1))
        ac = (("every layer" if cfg.train.checkpoint_every == 1 else f"every {cfg.train.checkpoint_every} layers")
              if cfg.train.activation_checkpointing else "off")
        self.log("memory estimate per process: " + ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in est.items())
                 + f" = {sum(est.values()) / 2**30:.1f} GiB (activation checkpointing {ac})")
        self.log(f"batch: {batches.global_batch} sequences per step = {cfg.train.micro_batch_size} per micro-batch "
                 f"x {accum} accumulated x {d.world} process(es)")

        step = 0
        latest = ckpt.latest()
        if latest is not None:
            state = ckpt.load(latest, model, opt)
            sched.load_state_dict(state["scheduler"])
            batches.load_state_dict(state["data"])
            step = int(state["step"])
            self.log(f"resumed from {latest} at step {step} ({batches.samples_seen:,} samples seen)")
            ckpt.upload_if_missing(latest, step)
        if step >= cfg.train.steps:
            self.log(f"run already complete at step {step} (train.steps={cfg.train.steps})")
            if cfg.export.at_end and not self.export_dir.is_dir():
                self._export(model, ds, step)
            return self._uploads_done(ckpt, step)

        signal.signal(signal.SIGTERM, self._on_sigterm)
        fpt = mdl.flops_per_token(cfg.model.arch, cfg.train.seq_len)
        dev_name = mx.device_name(d.device)
        peak, peak_src = (cfg.metrics.peak_flops, "metrics.peak_flops") if cfg.metrics.peak_flops else mx.peak_flops(dev_name)
        self.log(f"metrics: {fpt:.3e} FLOPs/token; device {dev_name}; peak "
                 + (f"{peak:.3e} FLOP/s ({peak_src})" if peak else "unknown, MFU not reported"))
        log_file = mx.MetricsLog(self.run_dir / "metrics.jsonl", d.is_main, cfg.metrics.prometheus_port,
                                 total_steps=cfg.train.steps, start_step=step)
        loss_fn = mdl.compiled_loss() if cfg.train.compile else mdl.token_loss
        tokens_per_step = batches.global_batch * cfg.train.seq_len
        params = [p for p in model.parameters() if p.requires_grad]
        clip = cfg.train.grad_clip if cfg.train.grad_clip > 0 else float("inf")
        fault = os.environ.get(FAULT_ENV, "")
        t_last, steps_since = time.perf_counter(), 0

        while step < cfg.train.steps:
            lr = sched.get_last_lr()[0]
            loss_sum = torch.zeros((), device=d.device)
            for i, x in enumerate(batches.next_step()):
                if d.mesh.ndim == 2:  # HSDP: gradients cross nodes once per step, not per micro-batch
                    model.set_requires_all_reduce(i == accum - 1)
                x = x.to(d.device, non_blocking=True)
                loss = loss_fn(model(input_ids=x).logits, x)
                (loss / accum).backward()
                loss_sum += loss.detach()
            gnorm = torch.nn.utils.clip_grad_norm_(params, clip)
            gnorm = gnorm.full_tensor() if hasattr(gnorm, "full_tensor") else gnorm
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            step += 1
            steps_since += 1
            # one host-side all-reduce (no wait for the GPU): SIGTERM on any rank, and where the
            # background checkpoint upload stands on every rank
            agreed = d.all_max_many([1.0 if self._stop else 0.0, *ckpt.upload.flags()])
            stop = agreed[0] > 0
            ckpt.upload.advance(agreed[1:], step)
            if step % cfg.metrics.log_every == 0 or step == cfg.train.steps or stop:
                dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)  # the device syncs at log steps only
                if d.device.type == "cuda":
                    torch.cuda.synchronize(d.device)
                dt = time.perf_counter() - t_last
                tps = tokens_per_step * steps_since / dt
                per_dev = tps / d.world
                log_file.write({
                    "step": step,
                    "loss": (loss_sum / (accum * d.world)).item(),
                    "grad_norm": float(gnorm),
                    "lr": lr,
                    "tokens_per_s": round(tps, 1),
                    "tokens_per_s_per_device": round(per_dev, 1),
                    "mfu": round(per_dev * fpt / peak, 4) if peak else None,
                    "step_time_s": round(dt / steps_since, 4),
                    "tokens_seen": batches.samples_seen * cfg.train.seq_len,
                    "epoch": round(batches.epoch, 4),
                    "checkpoint_uploading": int(ckpt.upload.busy),
                    "checkpoint_upload_failures": ckpt.upload.failures,
                    **mx.memory_gib(d.device),
                })
                t_last, steps_since = time.perf_counter(), 0
            if fault == f"sigkill:{step}" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0" \
                    and d.rank == d.world - 1:
                os.kill(os.getpid(), signal.SIGKILL)
            if step % cfg.checkpoint.every == 0 or stop or (step == cfg.train.steps and cfg.checkpoint.at_end):
                t_save = time.perf_counter()
                ckpt.save(step, model, opt, self._state(step, batches, sched, ds), self.tokenizer_dir)
                t_last += time.perf_counter() - t_save  # checkpoint time is not training throughput
            if stop:
                self.log(f"SIGTERM: checkpoint saved at step {step}; exiting cleanly")
                return self._uploads_done(ckpt, step)
        if cfg.export.at_end:
            self._export(model, ds, step)  # overlaps the last checkpoint's upload
        self.log(f"done: {step} steps")
        return self._uploads_done(ckpt, step)

    def _uploads_done(self, ckpt: Checkpointer, step: int) -> int:
        """Collective: wait for the last upload. 1 when the newest checkpoint is not in object
        storage (the system of record lacks the run's last state, so the job must show a failure;
        it stays on the local disk); failures of earlier checkpoints are logged and counted only."""
        ckpt.upload.wait(step)
        failed = ckpt.upload.last_failed
        if failed is None:
            return 0
        self.log(f"error: the last checkpoint {failed.name} could not be uploaded to {self.cfg.checkpoint.upload} "
                 f"({ckpt.upload.failures} failed upload(s) in this run; reasons above); it stays in {failed}. "
                 "Exiting 1")
        return 1

    def _state(self, step: int, batches: Batches, sched, ds: PackedDataset) -> dict:
        return {"step": step, "world_size": self.d.world, "data": batches.state_dict(),
                "scheduler": sched.state_dict(), "config": json.loads(self.cfg.to_json()),
                "dataset_manifest_sha256": ds.sha256}

    def _export(self, model, ds: PackedDataset, step: int) -> None:
        """Collective: gather full weights to rank 0, write the HF directory, check its logits."""
        probe = torch.from_numpy(ds.row(0, 0)[None, :])
        model.eval()
        with torch.no_grad():
            trained = model(input_ids=probe.to(self.d.device)).logits.float().cpu()
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        model.train()
        if self.d.is_main:
            out = write_hf_dir(full, self.cfg.model.arch, self.tokenizer_dir, self.export_dir, self.cfg.export.dtype,
                               {"run": self.cfg.run.name, "step": step, "dataset_manifest_sha256": ds.sha256})
            torch.save({"input_ids": probe, "logits": trained}, self.run_dir / "export_probe.pt")
            exported = logits_of_hf_dir(out, probe)
            diff = (exported - trained).abs().max().item()
            exact = self.cfg.export.dtype == "float32" and mdl.param_dtype(self.cfg, self.d.device) is None
            verdict = ("same logits" if diff <= 1e-5 else "LOGITS DIFFER") if exact else "bf16 rounding expected"
            self.log(f"export: {out} (max |logit difference| vs the trained model {diff:.3g}: {verdict})")
            if exact and diff > 1e-5:
                raise RuntimeError(f"export check failed: max |logit difference| {diff}")
        self.d.barrier()
