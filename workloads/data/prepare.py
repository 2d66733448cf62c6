"""Corpus -> tokenizer -> packed shards -> manifest (the one pipeline behind the CLI and the
``debug_tiny`` recipe's self-made dataset)."""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

from .. import objectstore
from ..errors import UserError
from . import shards as sh
from . import tokenizer as tk
from . import records as rec_mod
from .sources import SourceFile, discover, iter_documents


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
    records: Optional[list[dict]] = None,
    name: Optional[str] = None,
) -> dict:
    """Prepare a dataset at ``output`` (local directory or ``s3://`` prefix); returns the manifest.

    With ``tokenizer`` (a directory holding a Hugging Face tokenizer) the corpus is encoded with
    it; without, a byte-level BPE of ``vocab_size`` is trained on the corpus first (a second
    streaming pass; ``tokenizer_train_docs`` caps the documents it sees).
    """
    sources = discover(inputs)
    # each input's dataset record (licence, origin, ...): refused before any work when one is missing
    described = {s.location: {**s.describe(), **_record_fields(s, records)} for s in sources}
    pii: dict[str, Counter] = {s.location: Counter() for s in sources}

    def masked(source: SourceFile, count: bool):
        for doc in iter_documents(source, text_field):
            text, found = rec_mod.mask(doc)
            if count:
                pii[source.location].update(found)
            yield text

    def corpus(count: bool):
        for source in sources:
            yield from masked(source, count)
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
        docs = corpus(count=False)
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
    for source in sources:
        tokens = 0
        for ids in encoder.encode(masked(source, count=True)):
            writer.add(ids)
            tokens += len(ids)
        described[source.location].update(tokens=tokens, sha256=_sha256(source),
                                          pii=dict(sorted(pii[source.location].items())))
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
        "sources": [described[s.location] for s in sources],
        "pii": {"kinds": sorted(rec_mod.MASKS), "masked": dict(sorted(sum(pii.values(), Counter()).items()))},
        "totals": totals,
        "shards": writer.shards,
    }
    (work / rec_mod.DATA_CARD).write_text(rec_mod.data_card(manifest, name or Path(str(output).rstrip("/")).name),
                                          encoding="utf-8")
    if remote:
        objectstore.upload_dir(tok_dir, objectstore.join(output, sh.TOKENIZER_DIR))
        objectstore.upload(work / rec_mod.DATA_CARD, objectstore.join(output, rec_mod.DATA_CARD))
        sh.write_manifest(work, manifest)
        objectstore.upload(work / sh.MANIFEST, objectstore.join(output, sh.MANIFEST))
        shutil.rmtree(work, ignore_errors=True)
    else:
        sh.write_manifest(work, manifest)
    log(f"prepare: {totals['documents']:,} documents -> {totals['sequences']:,} sequences of {seq_len} "
        f"tokens in {totals['shards']} shard(s); {totals['dropped_tail_tokens']} tail tokens dropped")
    return manifest


def _record_fields(source: SourceFile, records: Optional[list[dict]]) -> dict:
    if records is None:  # a library call without records (tests, the synthetic corpus): said so in the card
        return {"license": None, "unlicensed_reason": "no dataset record given"}
    rec = rec_mod.record_for(source.location, records)
    return {k: rec[k] for k in ("license", "origin", "retrieved", "category", "tdm_optout", "unlicensed_reason")}


def _sha256(source: SourceFile) -> str:
    import hashlib

    from ..files import HASH_CHUNK, sha256_file

    if not objectstore.is_remote(source.location):
        return sha256_file(source.location)
    digest = hashlib.sha256()
    bucket, key = objectstore.split(source.location)
    body = objectstore.client().get_object(Bucket=bucket, Key=key)["Body"]
    while chunk := body.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
