"""Corpus -> tokenizer -> packed shards -> manifest (the one pipeline behind the CLI and the
``debug_tiny`` recipe's self-made dataset)."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

from .. import objectstore
from ..errors import UserError
from . import shards as sh
from . import tokenizer as tk
from .sources import discover, iter_corpus


def prepare(
    inputs: Iterable[str],
    output: str,
    *,
    tokenizer: Optional[str] = None,
    vocab_size: int = 32000,
    seq_len: int = 2048,
    sequences_per_shard: int = 16384,
    text_field: str = "text",
    tokenizer_train_docs: Optional[int] = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Prepare a dataset at ``output`` (local directory or ``s3://`` prefix); returns the manifest.

    With ``tokenizer`` (a directory holding a Hugging Face tokenizer) the corpus is encoded with
    it; without, a byte-level BPE of ``vocab_size`` is trained on the corpus first (a second
    streaming pass; ``tokenizer_train_docs`` caps the documents it sees).
    """
    sources = discover(inputs)
    remote = objectstore.is_remote(output)
    if remote:
        if objectstore.exists(objectstore.join(output, sh.MANIFEST)):
            raise UserError(f"output {output}: already holds a prepared dataset ({sh.MANIFEST}); choose another prefix")
        work = Path(tempfile.mkdtemp(prefix="prepare-"))
    else:
        work = Path(output)
        if (work / sh.MANIFEST).exists():
            raise UserError(f"output {output}: already holds a prepared dataset ({sh.MANIFEST}); "
                            "choose another directory or delete it")
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob("shard-*.bin*"):  # leftovers of an interrupted run
            stale.unlink()
    log(f"prepare: {len(sources)} input file(s), {sum(s.size for s in sources):,} bytes")

    tok_dir = work / sh.TOKENIZER_DIR
    if tokenizer:
        tok = tk.load(tokenizer)
        tok.save_pretrained(str(tok_dir))
        tok_info = {"source": str(tokenizer), "trained": False}
    else:
        docs = iter_corpus(sources, text_field)
        if tokenizer_train_docs:
            docs = itertools.islice(docs, tokenizer_train_docs)
        tok = tk.train_bpe(docs, vocab_size, tok_dir)
        tok_info = {"source": None, "trained": True, "algorithm": "byte-level BPE",
                    "requested_vocab_size": vocab_size, "train_documents_cap": tokenizer_train_docs}
        log(f"prepare: trained a byte-level BPE tokenizer, {len(tok)} tokens")
    encoder = tk.Encoder(tok)

    def ship(path: Path, entry: dict) -> None:
        if remote:
            objectstore.upload(path, objectstore.join(output, path.name))
            path.unlink()
        log(f"prepare: {entry['file']} {entry['sequences']} sequences, {entry['documents']} documents")

    writer = sh.ShardWriter(work, seq_len, sequences_per_shard, encoder.vocab_size, on_shard=ship)
    for ids in encoder.encode(iter_corpus(sources, text_field)):
        writer.add(ids)
    totals = writer.close()
    if not totals["sequences"]:
        raise UserError(f"the corpus ({totals['documents']} documents, {totals['dropped_tail_tokens']} tokens) "
                        f"is shorter than one sequence of seq_len={seq_len}")
    manifest = {
        "format": sh.FORMAT,
        "seq_len": seq_len,
        "dtype": sh.dtype_for(encoder.vocab_size),
        "vocab_size": encoder.vocab_size,
        "bos_id": encoder.bos_id,
        "eos_id": encoder.eos_id,
        "document_layout": "[BOS] text [EOS], concatenated, cut into rows of seq_len",
        "tokenizer": {"dir": sh.TOKENIZER_DIR, "sha256": tk.fingerprint(tok_dir), **tok_info},
        "text_field": text_field,
        "sources": [s.describe() for s in sources],
        "totals": totals,
        "shards": writer.shards,
    }
    if remote:
        objectstore.upload_dir(tok_dir, objectstore.join(output, sh.TOKENIZER_DIR))
        sh.write_manifest(work, manifest)
        objectstore.upload(work / sh.MANIFEST, objectstore.join(output, sh.MANIFEST))
        shutil.rmtree(work, ignore_errors=True)
    else:
        sh.write_manifest(work, manifest)
    log(f"prepare: {totals['documents']:,} documents -> {totals['sequences']:,} sequences of {seq_len} "
        f"tokens in {totals['shards']} shard(s); {totals['dropped_tail_tokens']} tail tokens dropped")
    return manifest
