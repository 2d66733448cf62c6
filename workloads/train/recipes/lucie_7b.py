"""lucie_7b: Lucie-7B's architecture and main pre-training hyper-parameters.

Architecture (OpenLLM-France/Lucie-7B model card): Llama 3.1 layout, 32 layers, hidden 4096,
32 heads, 8 KV heads, FFN 12288, vocabulary 65024, RMS norm eps 1e-5, untied embeddings:
6,706,958,336 parameters. Main pre-training: context 4096, RoPE theta 500,000, AdamW
(0.9, 0.95, eps 1e-5), lr 3e-4 -> 3e-5 warm-up + cosine, weight decay 0.1, clipping 1.0,
initializer range 0.009, final batch 1024 sequences (the card's batch ramp 256 -> 1024 is not
reproduced: the batch here is fixed).
"""

from __future__ import annotations

from ..config import (CheckpointConfig, DataConfig, ExportConfig, LlamaArch, MetricsConfig, ModelConfig,
                      RunConfig, TrainConfig, TrainingRun)


def lucie_7b() -> TrainingRun:
    """Many nodes: Lucie-7B (6.7B), bf16, FSDP2 + compile + activation checkpointing, seq 4096."""
    return TrainingRun(
        run=RunConfig(name="lucie_7b", dir="build/runs/lucie_7b", seed=0),
        data=DataConfig(path="s3://@datasets/packed/lucie-65k-seq4096"),
        model=ModelConfig(
            arch=LlamaArch(vocab_size=65024, hidden_size=4096, intermediate_size=12288, num_layers=32,
                           num_heads=32, num_kv_heads=8, max_seq_len=4096, rope_theta=500000.0,
                           rms_norm_eps=1e-5, tie_embeddings=False, initializer_range=0.009),
        ),
        # 1024 sequences of 4096 tokens per step (4.2M tokens) on any number of GPUs dividing 512:
        # 8 micro-batches accumulated on 64 GPUs, 16 on 32; on 24 the run is refused, naming the
        # nearest global batches (1008, 1056) to choose from
        train=TrainConfig(steps=753_851, seq_len=4096, micro_batch_size=2, global_batch=1024, lr=3e-4, min_lr=3e-5,
                          warmup_steps=2000, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-5, grad_clip=1.0,
                          mixed_precision="auto", activation_checkpointing=True, compile=True),
        checkpoint=CheckpointConfig(every=1000, keep=3, upload="s3://@checkpoints/lucie_7b"),
        metrics=MetricsConfig(log_every=10),
        export=ExportConfig(at_end=True, dtype="bfloat16"),
    )
