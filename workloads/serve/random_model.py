"""A Llama model with random weights and a made-up tokenizer, saved as a Hugging Face directory.

What the throughput benchmark serves (an 8B-class model on a GPU: random weights cost the same
FLOPs and bytes as trained ones) and what the serving tests serve on CPU in a second. Never a
model to evaluate: its answers are noise. ::

    python -m workloads.serve.random_model tiny build/models/random-tiny
    python -m workloads.serve.random_model llama3_8b /scratch/models/random-8b     # GPU machine

The tokenizer is a byte-level BPE whose merges are made up (each token is an earlier token plus
one byte), so it has exactly the model's vocabulary size without training on any corpus: every id
the model can sample decodes to text, which vLLM's detokenizer needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.tokenizer import BOS, EOS, PAD


@dataclass(frozen=True)
class Shape:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position: int
    rope_theta: float = 10000.0


SHAPES = {
    # head_dim 32: vLLM's CPU attention supports head sizes 32, 64, 80, ... (not 16)
    "tiny": Shape(vocab_size=512, hidden_size=64, intermediate_size=192, num_layers=2, num_heads=2,
                  num_kv_heads=1, max_position=256),
    # Llama-3.1-8B's shapes (the vocabulary of Llama 3; Lucie-7B's is 65,024)
    "llama3_8b": Shape(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32,
                       num_heads=32, num_kv_heads=8, max_position=8192, rope_theta=500000.0),
}


def synthetic_tokenizer(vocab_size: int, out_dir: str | Path):
    """A byte-level BPE of exactly ``vocab_size`` tokens (3 specials + 256 bytes + made-up merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 259:
        raise ValueError(f"vocab_size {vocab_size}: a byte-level BPE needs at least 259 tokens")
    # letters and the space marker first, so that common text makes multi-byte tokens
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(),
                      key=lambda c: (not (c.isascii() and c.isalpha()) and c != "Ġ", c))
    vocab = {tok: i for i, tok in enumerate([BOS, EOS, PAD, *alphabet])}
    merges: list[tuple[str, str]] = []
    frontier = list(alphabet)
    while len(vocab) < vocab_size:
        longer = []
        for prefix in frontier:
            for ch in alphabet:
                if len(vocab) >= vocab_size:
                    break
                token = prefix + ch
                vocab[token] = len(vocab)
                merges.append((prefix, ch))
                longer.append(token)
        frontier = longer
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, vocab[BOS])])
    for special in (BOS, EOS, PAD):
        tok.add_special_tokens([special])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    hf.model_max_length = 1 << 30
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out_dir))
    return hf


def random_llama(out_dir: str | Path, shape: Shape | str = "tiny", *, dtype: str = "bfloat16",
                 seed: int = 0) -> Path:
    """Write a random-weight LlamaForCausalLM of ``shape`` and its tokenizer to ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if isinstance(shape, str):
        shape = SHAPES[shape]
    out_dir = Path(out_dir)
    tok = synthetic_tokenizer(shape.vocab_size, out_dir)
    cfg = LlamaConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads, max_position_embeddings=shape.max_position,
        rope_theta=shape.rope_theta, tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    target = getattr(torch, dtype)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(target)  # an 8B model initialised in bf16: 16 GB, not 32
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(str(out_dir), safe_serialization=True, max_shard_size="5GB")
    (out_dir / "random_model.json").write_text(json.dumps({"shape": asdict(shape), "dtype": dtype, "seed": seed,
                                                           "warning": "random weights: for speed tests only"},
                                                          indent=2) + "\n")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workloads.serve.random_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shape", choices=sorted(SHAPES))
    p.add_argument("out")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(random_llama(args.out, args.shape, dtype=args.dtype, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
