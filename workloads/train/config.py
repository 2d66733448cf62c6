"""The training run's configuration tree: typed, validated once, frozen.

A recipe (``workloads.train.recipes``) returns a complete ``TrainingRun``; the command line then
changes only the keys listed in ``OVERRIDABLE`` (``key=value``), and the resolved tree is written
to ``<run.dir>/config.json`` beside the run. Every error names the key and what is allowed.
"""

from __future__ import annotations

import json
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RunConfig(_Strict):
    name: str = Field(min_length=1)
    dir: str = Field(min_length=1, description="local directory of the run: config, metrics, checkpoints, export")
    seed: int = Field(0, ge=0)


class SyntheticData(_Strict):
    """A small deterministic corpus made and packed under ``<run.dir>/data`` (CPU recipes, tests)."""

    documents: int = Field(2000, ge=1)
    vocab_size: int = Field(512, ge=259)
    sequences_per_shard: int = Field(256, ge=1)


class DataConfig(_Strict):
    path: Optional[str] = Field(None, description="prepared dataset: directory or s3:// prefix")
    synthetic: Optional[SyntheticData] = None
    cache_dir: Optional[str] = Field(None, description="local copies of shards read from object storage")
    verify: bool = Field(True, description="check each shard's sha256 against the manifest when first opened")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.synthetic is None):
            raise ValueError("exactly one of data.path (a prepared dataset) and data.synthetic must be set")
        return self


class LlamaArch(_Strict):
    vocab_size: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    intermediate_size: int = Field(ge=1)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    max_seq_len: int = Field(ge=2)
    rope_theta: float = Field(500000.0, gt=0)
    rms_norm_eps: float = Field(1e-5, gt=0)
    tie_embeddings: bool = False
    initializer_range: float = Field(0.02, gt=0)

    @model_validator(mode="after")
    def _heads(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


class ModelConfig(_Strict):
    arch: LlamaArch
    init_from: Optional[str] = Field(None, description="HF directory to continue pre-training from")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"


class TrainConfig(_Strict):
    steps: int = Field(ge=1)
    seq_len: int = Field(ge=2)
    micro_batch_size: int = Field(ge=1, description="sequences per process per forward")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    global_batch: Optional[int] = Field(None, ge=1, description="sequences per optimizer step, all processes "
                                        "together: grad_accum is then derived from the number of processes")
    lr: float = Field(gt=0)
    min_lr: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    grad_clip: float = Field(1.0, ge=0, description="max global grad norm; 0 turns clipping off")
    mixed_precision: Literal["auto", "bf16", "none"] = Field("auto", description="auto: bf16 on GPU, none on CPU")
    activation_checkpointing: bool = False
    checkpoint_every: int = Field(1, ge=1, description="with activation_checkpointing: recompute every N-th "
                                  "decoder layer (1: all); the others keep their activations")
    compile: bool = False
    sharding: Literal["fsdp", "hsdp"] = Field("fsdp", description="fsdp: shard over all processes; hsdp: shard "
                                              "within each node, replicate across nodes (each node must hold the "
                                              "whole model and optimizer state)")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _lrs(self):
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr {self.min_lr} is above lr {self.lr}")
        if self.global_batch is not None and self.grad_accum != 1:
            raise ValueError(f"set one of grad_accum ({self.grad_accum}) and global_batch ({self.global_batch}), "
                             "not both (global_batch=none keeps grad_accum)")
        if self.global_batch is not None and self.global_batch % self.micro_batch_size:
            raise ValueError(f"global_batch {self.global_batch} is not a multiple of micro_batch_size "
                             f"{self.micro_batch_size}")
        return self

    def accumulation(self, world: int) -> int:
        """Micro-batches per optimizer step with ``world`` processes."""
        if self.global_batch is None:
            return self.grad_accum
        per_pass = self.micro_batch_size * world
        if self.global_batch % per_pass:
            lower = self.global_batch // per_pass * per_pass
            near = " or ".join(str(n) for n in (lower, lower + per_pass) if n)
            raise UserError(f"train.global_batch {self.global_batch} is not a multiple of train.micro_batch_size "
                            f"{self.micro_batch_size} x {world} processes = {per_pass}: set train.global_batch={near}, "
                            f"or another train.micro_batch_size, or use a number of processes dividing "
                            f"{self.global_batch // self.micro_batch_size}")
        return self.global_batch // per_pass


class CheckpointConfig(_Strict):
    every: int = Field(ge=1, description="steps between checkpoints")
    keep: int = Field(2, ge=1, description="committed checkpoints kept locally (older ones deleted)")
    dir: Optional[str] = Field(None, description="default <run.dir>/checkpoints; shared by all nodes")
    upload: Optional[str] = Field(None, description="s3:// prefix each committed checkpoint is copied to, "
                                  "in the background while training goes on")
    upload_attempts: int = Field(4, ge=1, description="tries per file before an upload is reported failed")
    upload_backoff_s: float = Field(5.0, ge=0, description="wait before the second try; doubles after each")
    verify: Literal["sha256", "size"] = "sha256"
    at_end: bool = Field(True, description="save when the last step is done (benchmarks turn it off)")


class MetricsConfig(_Strict):
    log_every: int = Field(1, ge=1)
    prometheus_port: Optional[int] = Field(None, ge=1, le=65535)
    peak_flops: Optional[float] = Field(None, gt=0, description="dense bf16 FLOP/s per device, for unlisted GPUs")


class ExportConfig(_Strict):
    at_end: bool = True
    dir: Optional[str] = Field(None, description="default <run.dir>/export")
    dtype: Literal["bfloat16", "float32"] = "bfloat16"


class TrainingRun(_Strict):
    run: RunConfig
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    checkpoint: CheckpointConfig
    metrics: MetricsConfig = MetricsConfig()
    export: ExportConfig = ExportConfig()

    @model_validator(mode="after")
    def _fits(self):
        if self.train.seq_len > self.model.arch.max_seq_len:
            raise ValueError(f"train.seq_len {self.train.seq_len} exceeds model.arch.max_seq_len "
                             f"{self.model.arch.max_seq_len}")
        return self

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


# The only keys the command line may change; everything else is the recipe's.
OVERRIDABLE: dict[str, str] = {
    "run.dir": "directory of the run (config, metrics, checkpoints, export)",
    "run.seed": "seed of the initial weights and the data order",
    "data.path": "prepared dataset: directory or s3:// prefix (replaces data.synthetic)",
    "model.init_from": "HF directory to continue pre-training from, or none",
    "train.steps": "optimizer steps in the whole run",
    "train.lr": "peak learning rate",
    "train.micro_batch_size": "sequences per process per forward",
    "train.grad_accum": "micro-batches per optimizer step",
    "train.global_batch": "sequences per optimizer step, all processes (derives grad_accum), or none",
    "train.compile": "torch.compile each decoder layer (true/false)",
    "train.activation_checkpointing": "recompute decoder layers in backward (true/false)",
    "train.checkpoint_every": "with activation checkpointing, recompute every N-th layer only (1: all)",
    "train.sharding": "fsdp (over all processes) or hsdp (within a node, replicated across nodes)",
    "train.device": "auto, cpu or cuda",
    "checkpoint.every": "steps between checkpoints",
    "checkpoint.keep": "committed checkpoints kept locally",
    "checkpoint.upload": "s3:// prefix for committed checkpoints, or none",
    "checkpoint.upload_attempts": "tries per file before a checkpoint upload is reported failed",
    "checkpoint.upload_backoff_s": "seconds before the second try of a file upload (doubles after each)",
    "metrics.log_every": "steps between metric lines",
    "metrics.prometheus_port": "serve Prometheus metrics on this port (rank 0), or none",
    "export.at_end": "export a Hugging Face directory at the end (true/false)",
}
_NONE = {"none", "null", ""}


def _describe(exc: ValidationError, given: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        shown = f" (given {given[key]!r})" if key in given else ""
        lines.append(f"{key or 'config'}: {err['msg']}{shown}")
    return "; ".join(lines)


def validate(tree: dict, given: Optional[dict[str, str]] = None) -> TrainingRun:
    try:
        return TrainingRun.model_validate(tree)
    except ValidationError as exc:
        raise UserError("invalid configuration: " + _describe(exc, given or {})) from None


def apply_overrides(cfg: TrainingRun, pairs: list[str]) -> TrainingRun:
    """``["train.steps=100", "checkpoint.upload=none"]`` -> a new validated ``TrainingRun``."""
    tree = cfg.model_dump(mode="json")
    given: dict[str, str] = {}
    allowed = ", ".join(OVERRIDABLE)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise UserError(f"override {pair!r} is not KEY=VALUE; overridable keys: {allowed}")
        if key not in OVERRIDABLE:
            node, exists = tree, True
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    exists = False
                    break
                node = node[part]
            why = "is set by the recipe, not the command line" if exists else "is not a configuration key"
            raise UserError(f"override {key!r} {why}; overridable keys: {allowed}")
        given[key] = value
        section, leaf = key.split(".")
        tree[section][leaf] = None if value.strip().lower() in _NONE else value
        if key == "data.path" and tree["data"]["path"] is not None:
            tree["data"]["synthetic"] = None
    return validate(tree, given)
