"""Held-out perplexity: the model's token-level cross-entropy on packed rows of a prepared dataset.

The dataset is one ``workloads.data`` wrote (a manifest, checksummed shards, its tokenizer). Rows
are scored as they were packed for training (``[BOS] text [EOS]`` documents cut into ``seq_len``
tokens), every position but the first predicted from the ones before it. A dataset made with
another tokenizer is refused: its token ids would mean other words to the model.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Optional

from .. import objectstore
from ..data import tokenizer as tk
from ..data.shards import TOKENIZER_DIR, PackedDataset
from ..errors import UserError


def _same_tokenizer(model_dir: Path, dataset: str, cache: Path) -> None:
    from transformers import AutoTokenizer

    if objectstore.is_remote(dataset):
        local = cache / "heldout-tokenizer"
        objectstore.download_dir(objectstore.join(dataset, TOKENIZER_DIR), local)
    else:
        local = Path(dataset) / TOKENIZER_DIR
    theirs = tk.load(local)
    ours = AutoTokenizer.from_pretrained(str(model_dir))
    if ours.get_vocab() != theirs.get_vocab():
        raise UserError(f"held-out dataset {dataset} was tokenized with another tokenizer than model {model_dir}'s "
                        f"({len(theirs)} vs {len(ours)} tokens or different ids); prepare it with "
                        f"`python -m workloads.data prepare --tokenizer {model_dir} ...`")


def heldout_perplexity(model_dir: str | Path, dataset: str, *, max_sequences: int = 256, batch_size: int = 8,
                       shard: Optional[int] = None, device: str = "cpu", dtype: str = "float32",
                       cache_dir: Optional[str | Path] = None) -> dict:
    """Perplexity of ``model_dir`` on up to ``max_sequences`` rows of ``dataset`` (one shard or all)."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="heldout-") as tmp:
        cache = Path(cache_dir) if cache_dir else Path(tmp)
        ds = PackedDataset(dataset, cache_dir=cache, verify=True)
        _same_tokenizer(model_dir, dataset, cache)
        shards = [shard] if shard is not None else list(range(len(ds.shards)))
        if shard is not None and not 0 <= shard < len(ds.shards):
            raise UserError(f"held-out dataset {dataset} has {len(ds.shards)} shard(s); shard {shard} does not exist")
        rows = [(s, i) for s in shards for i in range(ds.sizes[s])][:max_sequences]

        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype))
        model.to(device).eval()
        vocab = model.config.vocab_size
        if int(ds.manifest["vocab_size"]) > vocab:
            raise UserError(f"held-out dataset {dataset} uses {ds.manifest['vocab_size']} token ids, "
                            f"model {model_dir} has {vocab}")
        nll, tokens = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                batch = torch.stack([torch.from_numpy(ds.row(s, i)) for s, i in rows[start:start + batch_size]])
                batch = batch.to(device)
                logits = model(input_ids=batch).logits.float()
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1),
                                       reduction="sum")
                nll += float(loss)
                tokens += batch[:, 1:].numel()
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()  # the vllm backend loads the model next, in this process
    mean = nll / tokens
    return {
        "perplexity": math.exp(mean),
        "nll_per_token": mean,
        "tokens": tokens,
        "sequences": len(rows),
        "seq_len": ds.seq_len,
        "dataset": str(dataset),
        "dataset_manifest_sha256": ds.sha256,
        "shards": [ds.shards[s]["file"] for s in sorted({s for s, _ in rows})],
        "duration_s": round(time.monotonic() - started, 2),
    }
