"""Tokenizers: a Hugging Face tokenizer from a directory, or a byte-level BPE trained here.

Either way the result is saved with ``save_pretrained`` into the dataset (``<dataset>/tokenizer``),
so the trainer and the exported model carry the exact tokenizer the shards were made with, and
``transformers.AutoTokenizer.from_pretrained`` reads it back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import UserError

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
ENCODE_BATCH = 512


def train_bpe(texts: Iterable[str], vocab_size: int, out_dir: str | Path):
    """Train a byte-level BPE (GPT-2/Llama-3 style: every byte is a symbol, so nothing is ever
    out of vocabulary) with BOS/EOS/PAD specials, and save it as a ``transformers`` fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + 3:
        raise UserError(f"vocab_size {vocab_size} is too small: byte-level BPE needs at least 259 "
                        "(256 bytes + 3 special tokens)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter(texts), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # like Llama 3: the tokenizer adds BOS when asked for special tokens (AutoTokenizer's default)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    hf.model_max_length = 1 << 30
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out_dir)
    return hf


def load(directory: str | Path):
    """A fast tokenizer from a local directory (what ``save_pretrained`` wrote)."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"tokenizer {directory}: not a directory")
    try:
        tok = AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # many failure types inside transformers; say which directory
        raise UserError(f"tokenizer {directory}: cannot be loaded by transformers ({exc})") from None
    if not getattr(tok, "is_fast", False):
        raise UserError(f"tokenizer {directory}: only fast (tokenizer.json) tokenizers are supported")
    if tok.eos_token_id is None:
        raise UserError(f"tokenizer {directory}: has no EOS token, which separates packed documents")
    return tok


def fingerprint(directory: str | Path) -> str:
    """sha256 of ``tokenizer.json`` (vocabulary, merges, normalizer, pre-tokenizer, specials): what
    decides the ids. ``tokenizer_config.json`` is left out, transformers rewrites it on every save."""
    return hashlib.sha256((Path(directory) / "tokenizer.json").read_bytes()).hexdigest()


class Encoder:
    """Batch encoding through the Rust tokenizer; each document becomes [BOS] ids [EOS]."""

    def __init__(self, hf_tokenizer):
        self._tok = hf_tokenizer.backend_tokenizer
        self.bos_id = hf_tokenizer.bos_token_id
        self.eos_id = hf_tokenizer.eos_token_id
        self.vocab_size = len(hf_tokenizer)

    def encode(self, texts: Iterable[str]) -> Iterator[list[int]]:
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) >= ENCODE_BATCH:
                yield from self._encode_batch(batch)
                batch = []
        if batch:
            yield from self._encode_batch(batch)

    def _encode_batch(self, batch: list[str]) -> Iterator[list[int]]:
        head = [self.bos_id] if self.bos_id is not None else []
        for enc in self._tok.encode_batch(batch, add_special_tokens=False):
            yield head + enc.ids + [self.eos_id]
