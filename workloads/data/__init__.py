"""Data preparation: text/JSONL/Parquet (local or S3) -> tokenized, packed, checksummed shards.

See ``python -m workloads.data --help`` and docs/training.md.
"""

from .prepare import prepare
from .shards import PackedDataset, ShardChecksumError, load_manifest, verify_dataset

__all__ = ["prepare", "PackedDataset", "ShardChecksumError", "load_manifest", "verify_dataset"]
