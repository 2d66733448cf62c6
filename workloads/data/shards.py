"""Packed, fixed-length token shards and their manifest.

Layout of a prepared dataset (a local directory or an ``s3://`` prefix)::

    manifest.json          written last: its presence means the dataset is complete
    tokenizer/             the tokenizer the shards were made with (save_pretrained)
    shard-000000.bin       raw little-endian uint16 (vocab <= 65536) or uint32 tokens,
    shard-000001.bin       shape (sequences, seq_len), row-major
    ...

Documents are encoded as ``[BOS] text [EOS]``, concatenated, and cut into rows of ``seq_len``
tokens; the tail that does not fill a row is dropped and counted. Each shard entry of the manifest
states its sequences, tokens, documents (those starting in it), bytes and sha256: a run records the
manifest's own sha256 beside its config, which proves which data it saw.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import objectstore
from ..errors import UserError
from ..files import sha256_file

FORMAT = "infratech-packed-v1"
MANIFEST = "manifest.json"
TOKENIZER_DIR = "tokenizer"


class ShardChecksumError(UserError):
    pass


def dtype_for(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.bin"


def manifest_sha256(manifest: dict) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()


def canonical(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


class ShardWriter:
    """Streams documents into fixed-length rows; memory holds one document plus one row.

    Finished shards are hashed as they are written; with ``on_shard`` (e.g. an upload) they can
    leave the local disk as soon as they are complete.
    """

    def __init__(self, out_dir: str | Path, seq_len: int, sequences_per_shard: int, vocab_size: int,
                 on_shard: Optional[Callable[[Path, dict], None]] = None):
        if seq_len < 2:
            raise UserError(f"seq_len must be at least 2, got {seq_len}")
        if sequences_per_shard < 1:
            raise UserError(f"sequences_per_shard must be at least 1, got {sequences_per_shard}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.seq_len, self.per_shard = seq_len, sequences_per_shard
        self.vocab_size = vocab_size
        self.dtype = np.dtype(dtype_for(vocab_size)).newbyteorder("<")
        self.on_shard = on_shard
        self.shards: list[dict] = []
        self.documents = 0
        self._pending = np.empty(0, dtype=np.int64)
        self._fh = None
        self._hash = None
        self._rows_in_shard = 0
        self._docs_in_shard = 0
        self._starts: list[int] = []  # offsets in _pending where a document starts

    def add(self, ids: list[int]) -> None:
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size == 0:
            return
        if arr.min() < 0 or arr.max() >= self.vocab_size:
            raise UserError(f"token id out of range for vocab_size {self.vocab_size}")
        self.documents += 1
        self._starts.append(self._pending.size)  # where this document starts in the pending tokens
        self._pending = np.concatenate([self._pending, arr])
        n_rows = self._pending.size // self.seq_len
        if not n_rows:
            return
        L = self.seq_len
        starts = np.asarray(self._starts)
        for i in range(n_rows):
            row_starts = int(((starts >= i * L) & (starts < (i + 1) * L)).sum())
            self._write_row(self._pending[i * L:(i + 1) * L], row_starts)
        self._starts = [int(x) - n_rows * L for x in starts if x >= n_rows * L]
        self._pending = self._pending[n_rows * L:].copy()

    def _write_row(self, row: np.ndarray, doc_starts: int) -> None:
        if self._fh is None:
            self._tmp = self.out_dir / (shard_name(len(self.shards)) + ".part")
            self._fh = open(self._tmp, "wb")
            self._hash = hashlib.sha256()
        data = row.astype(self.dtype).tobytes()
        self._fh.write(data)
        self._hash.update(data)
        self._rows_in_shard += 1
        self._docs_in_shard += doc_starts
        if self._rows_in_shard == self.per_shard:
            self._finish_shard()

    def _finish_shard(self) -> None:
        self._fh.close()
        final = self._tmp.with_name(self._tmp.name[: -len(".part")])
        os.replace(self._tmp, final)
        entry = {
            "file": final.name,
            "sequences": self._rows_in_shard,
            "tokens": self._rows_in_shard * self.seq_len,
            "documents": self._docs_in_shard,
            "bytes": final.stat().st_size,
            "sha256": self._hash.hexdigest(),
        }
        self.shards.append(entry)
        self._fh, self._rows_in_shard, self._docs_in_shard = None, 0, 0
        if self.on_shard is not None:
            self.on_shard(final, entry)

    def close(self) -> dict:
        """Finish the last (short) shard; returns the totals for the manifest."""
        if self._fh is not None:
            self._finish_shard()
        dropped = int(self._pending.size)
        tail_docs = len(self._starts) if dropped else 0
        return {
            "documents": self.documents,
            "documents_only_in_dropped_tail": tail_docs,
            "sequences": sum(s["sequences"] for s in self.shards),
            "tokens": sum(s["tokens"] for s in self.shards),
            "dropped_tail_tokens": dropped,
            "shards": len(self.shards),
        }


def load_manifest(location: str) -> dict:
    location = str(location)
    if objectstore.is_remote(location):
        uri = objectstore.join(location, MANIFEST)
        if not objectstore.exists(uri):
            raise UserError(f"dataset {location}: no {MANIFEST} (not prepared, or preparation did not finish)")
        manifest = json.loads(objectstore.read_bytes(uri))
    else:
        path = Path(location)
        if not path.exists():
            raise UserError(f"dataset {location}: no such directory")
        if not (path / MANIFEST).is_file():
            raise UserError(f"dataset {location}: no {MANIFEST} (not prepared, or preparation did not finish)")
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise UserError(f"dataset {location}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def check_shard(path: Path, entry: dict) -> None:
    """Raise ShardChecksumError unless the file has the manifest's size and sha256."""
    if not path.is_file():
        raise ShardChecksumError(f"shard {entry['file']}: missing ({path})")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ShardChecksumError(f"shard {entry['file']}: {size} bytes, the manifest says {entry['bytes']} "
                                 "(truncated or modified; prepare the dataset again or restore the file)")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise ShardChecksumError(f"shard {entry['file']}: sha256 {actual} does not match the manifest's "
                                 f"{entry['sha256']} (corrupted or modified; prepare the dataset again or "
                                 "restore the file)")


class PackedDataset:
    """Read access to a prepared dataset: row ``i`` of shard ``s`` as a numpy array.

    Local shards are memory-mapped; shards on object storage are downloaded once into
    ``cache_dir``. Each shard is checked against the manifest (size and sha256) the first time it
    is opened, unless ``verify=False``.
    """

    def __init__(self, location: str, cache_dir: Optional[str | Path] = None, verify: bool = True):
        self.location = str(location)
        self.manifest = load_manifest(self.location)
        self.remote = objectstore.is_remote(self.location)
        if self.remote and cache_dir is None:
            raise UserError(f"dataset {location}: a cache directory is needed to read shards from object storage")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.verify = verify
        self.seq_len = int(self.manifest["seq_len"])
        self.dtype = np.dtype(self.manifest["dtype"]).newbyteorder("<")
        self.shards = self.manifest["shards"]
        if not self.shards:
            raise UserError(f"dataset {location}: the manifest lists no shard (corpus shorter than one sequence?)")
        self.sizes = [int(s["sequences"]) for s in self.shards]
        self._open: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return sum(self.sizes)

    @property
    def sha256(self) -> str:
        return manifest_sha256(self.manifest)

    def _local_path(self, index: int) -> Path:
        entry = self.shards[index]
        if not self.remote:
            return Path(self.location) / entry["file"]
        path = self.cache_dir / entry["file"]
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            objectstore.download(objectstore.join(self.location, entry["file"]), path)
        return path

    def shard(self, index: int) -> np.ndarray:
        if index not in self._open:
            path = self._local_path(index)
            if self.verify:
                check_shard(path, self.shards[index])
            self._open[index] = np.memmap(path, dtype=self.dtype, mode="r",
                                          shape=(self.sizes[index], self.seq_len))
        return self._open[index]

    def row(self, shard: int, offset: int) -> np.ndarray:
        return np.asarray(self.shard(shard)[offset], dtype=np.int64)


def verify_dataset(location: str, cache_dir: Optional[str | Path] = None) -> list[str]:
    """Every problem found (empty list: every shard matches the manifest)."""
    ds = PackedDataset(location, cache_dir=cache_dir, verify=False)
    problems = []
    for i, entry in enumerate(ds.shards):
        try:
            check_shard(ds._local_path(i), entry)
        except ShardChecksumError as exc:
            problems.append(str(exc))
    return problems


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    path = out_dir / MANIFEST
    tmp = path.with_name(MANIFEST + ".part")
    tmp.write_bytes(canonical(manifest))
    os.replace(tmp, path)
    return path
