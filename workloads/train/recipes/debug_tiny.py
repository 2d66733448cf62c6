"""debug_tiny: a 2-layer Llama on a self-made corpus; trains, checkpoints and exports on a CPU in
seconds. The tests and the CPU path of the throughput benchmark use it."""

from __future__ import annotations

from ..config import (CheckpointConfig, DataConfig, ExportConfig, LlamaArch, MetricsConfig, ModelConfig,
                      RunConfig, SyntheticData, TrainConfig, TrainingRun)


def debug_tiny() -> TrainingRun:
    """CPU, seconds: 2 layers, hidden 64, 512-token BPE trained on a synthetic FR/EN corpus."""
    return TrainingRun(
        run=RunConfig(name="debug_tiny", dir="build/runs/debug_tiny", seed=0),
        data=DataConfig(synthetic=SyntheticData(documents=2000, vocab_size=512, sequences_per_shard=256)),
        model=ModelConfig(
            arch=LlamaArch(vocab_size=512, hidden_size=64, intermediate_size=192, num_layers=2, num_heads=2,
                           num_kv_heads=1, max_seq_len=128, rope_theta=10000.0, rms_norm_eps=1e-5,
                           tie_embeddings=False, initializer_range=0.02),
        ),
        train=TrainConfig(steps=40, seq_len=128, micro_batch_size=4, grad_accum=2, lr=3e-3, min_lr=3e-4,
                          warmup_steps=5, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_clip=1.0,
                          mixed_precision="auto", activation_checkpointing=True, compile=False),
        checkpoint=CheckpointConfig(every=10, keep=2),
        metrics=MetricsConfig(log_every=1),
        # float32 so the exported weights are bit-identical to the trained master weights
        export=ExportConfig(at_end=True, dtype="float32"),
    )
