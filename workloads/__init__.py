"""Workloads that run inside the cluster's containers (and on a laptop CPU with a tiny model).

- ``workloads.data``: text/JSONL/Parquet -> tokenized, packed, checksummed shards with a manifest
- ``workloads.train``: FSDP2 trainer for Llama-architecture ``transformers`` models, recipes,
  sharded atomic checkpoints with exact resume, HF export, tokens/s and MFU

Hand-off between stages is a Hugging Face directory (safetensors + config + tokenizer) so that
vLLM and lm-evaluation-harness read what the trainer writes. Object storage (S3-compatible) is
reached through the variables of the team namespace's ``object-store`` Secret, see
``workloads.objectstore``.
"""

__version__ = "0.1.0"
