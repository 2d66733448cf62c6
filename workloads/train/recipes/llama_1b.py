"""llama_1b: Llama-3.2-1B's shape (16 layers, hidden 2048, 32 heads, 8 KV heads, FFN 8192, tied
embeddings) with a 65,024-token vocabulary (Lucie's tokenizer size): ~1.1B parameters. One GPU to
one node; the throughput benchmark's GPU model."""

from __future__ import annotations

from ..config import (CheckpointConfig, DataConfig, ExportConfig, LlamaArch, MetricsConfig, ModelConfig,
                      RunConfig, TrainConfig, TrainingRun)


def llama_1b() -> TrainingRun:
    """One GPU to one node: ~1.1B Llama, bf16, FSDP2 + torch.compile, seq 4096."""
    return TrainingRun(
        run=RunConfig(name="llama_1b", dir="build/runs/llama_1b", seed=0),
        # prepared with: python -m workloads.data prepare --tokenizer <65k tokenizer> --seq-len 4096 ...
        data=DataConfig(path="s3://@datasets/packed/lucie-65k-seq4096", cache_dir=None),
        model=ModelConfig(
            arch=LlamaArch(vocab_size=65024, hidden_size=2048, intermediate_size=8192, num_layers=16,
                           num_heads=32, num_kv_heads=8, max_seq_len=4096, rope_theta=500000.0,
                           rms_norm_eps=1e-5, tie_embeddings=True, initializer_range=0.02),
        ),
        # H200 (141 GB): 4 x 4096 tokens per GPU fit without activation checkpointing, which MFU
        # does not count; global batch = 4 x grad_accum x GPUs sequences
        train=TrainConfig(steps=100_000, seq_len=4096, micro_batch_size=4, grad_accum=8, lr=3e-4, min_lr=3e-5,
                          warmup_steps=2000, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_clip=1.0,
                          mixed_precision="auto", activation_checkpointing=False, compile=True),
        checkpoint=CheckpointConfig(every=1000, keep=3, upload="s3://@checkpoints/llama_1b"),
        metrics=MetricsConfig(log_every=10),
        export=ExportConfig(at_end=True, dtype="bfloat16"),
    )
