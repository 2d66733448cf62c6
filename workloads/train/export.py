"""Export to a consolidated Hugging Face directory: safetensors + config.json + tokenizer.

What vLLM, lm-evaluation-harness and ``transformers.AutoModelForCausalLM.from_pretrained`` read.
Two ways in: at the end of training from the sharded model in memory (then checked: the directory
is loaded back with plain ``transformers`` and its logits compared with the trained model's on a
probe batch), or afterwards from any committed checkpoint, in one process, without a GPU::

    python -m workloads.train.export build/runs/debug_tiny/checkpoints/step-000000040 /tmp/hf [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import torch

from ..errors import UserError
from .config import LlamaArch, TrainingRun
from .model import hf_config

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
PROVENANCE = "training_provenance.json"


def write_hf_dir(full_sd: dict, arch: LlamaArch, tokenizer_dir: Optional[Path], out_dir: Path, dtype: str,
                 provenance: dict) -> Path:
    """Write ``out_dir`` through a staging directory renamed into place when complete."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    cfg = hf_config(arch, "sdpa", use_cache=True)
    if tokenizer_dir is not None:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    target = DTYPES[dtype]
    sd = {k: v.detach().to(target) for k, v in full_sd.items()}
    if arch.tie_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    missing = set(model.state_dict()) - set(sd)
    if missing:
        raise RuntimeError(f"export: weights missing from the state dict: {sorted(missing)[:5]}")
    model.load_state_dict(sd, strict=True, assign=True)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".staging-{out_dir.name}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging), safe_serialization=True, max_shard_size="5GB")
    if tokenizer_dir is not None:
        tok.save_pretrained(str(staging))
    (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    if out_dir.exists():
        old = out_dir.with_name(f".old-{out_dir.name}")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir


def logits_of_hf_dir(out_dir: Path, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits of the exported directory loaded with plain transformers, float32 on CPU."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids).logits.float()


def export_checkpoint(ckpt_dir: Path, out_dir: Path, dtype: Optional[str] = None) -> Path:
    """A committed checkpoint (DCP shards) -> HF directory, in this process (no process group)."""
    import torch.distributed.checkpoint as dcp
    from transformers import LlamaForCausalLM

    from .checkpoint import MARKER, STATE

    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / MARKER).is_file():
        raise UserError(f"{ckpt_dir}: not a committed checkpoint (no {MARKER})")
    state = json.loads((ckpt_dir / STATE).read_text())
    cfg = TrainingRun.model_validate(state["config"])
    with torch.device("meta"):
        shapes = LlamaForCausalLM(hf_config(cfg.model.arch)).state_dict()
    model_sd = {k: torch.empty(v.shape, dtype=torch.float32) for k, v in shapes.items()}
    if cfg.model.arch.tie_embeddings:
        model_sd.pop("lm_head.weight", None)
    holder = {"model": model_sd}
    dcp.load(holder, checkpoint_id=str(ckpt_dir), no_dist=True)
    tok = ckpt_dir / "tokenizer"
    return write_hf_dir(holder["model"], cfg.model.arch, tok if tok.is_dir() else None, out_dir,
                        dtype or cfg.export.dtype,
                        {"run": cfg.run.name, "step": state["step"], "checkpoint": str(ckpt_dir),
                         "dataset_manifest_sha256": state.get("dataset_manifest_sha256")})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workloads.train.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a committed checkpoint directory (…/checkpoints/step-NNNNNNNNN)")
    p.add_argument("out", help="directory to write (replaced if it exists)")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="default: the run's export.dtype")
    args = p.parse_args(argv)
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="torch.distributed is disabled")  # one process on purpose
    try:
        print(export_checkpoint(Path(args.checkpoint), Path(args.out), args.dtype))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
