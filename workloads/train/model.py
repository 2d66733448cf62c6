"""The model: a ``transformers`` LlamaForCausalLM, sharded with FSDP2 (``fully_shard``).

Built on the meta device (no process ever holds a full copy on the accelerator), each decoder layer
sharded as its own FSDP unit, then the root; weights are materialized shard by shard with
``set_model_state_dict(..., broadcast_from_rank0=True)`` from a full state dict that only rank 0
holds on CPU: freshly initialized (seeded, so the same for any world size) or read from an HF
checkpoint (continued pre-training).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from ..errors import UserError
from .config import LlamaArch, TrainingRun
from .distributed import Dist


def hf_config(arch: LlamaArch, attn_implementation: str = "sdpa", use_cache: bool = False):
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        vocab_size=arch.vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_kv_heads,
        max_position_embeddings=arch.max_seq_len,
        rope_theta=arch.rope_theta,
        rms_norm_eps=arch.rms_norm_eps,
        tie_word_embeddings=arch.tie_embeddings,
        initializer_range=arch.initializer_range,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        use_cache=use_cache,
        bos_token_id=None,
        eos_token_id=None,
    )
    cfg._attn_implementation = attn_implementation
    return cfg


def rope_theta(cfg) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def _arch_of(cfg) -> dict:
    return {
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
        "num_layers": cfg.num_hidden_layers, "num_heads": cfg.num_attention_heads,
        "num_kv_heads": cfg.num_key_value_heads, "rope_theta": rope_theta(cfg), "rms_norm_eps": cfg.rms_norm_eps,
        "tie_embeddings": bool(cfg.tie_word_embeddings),
    }


def check_init_from(path: str, arch: LlamaArch) -> None:
    """The checkpoint we continue from must have the recipe's architecture; name what differs."""
    from transformers import LlamaConfig

    p = Path(path)
    if not (p / "config.json").is_file():
        raise UserError(f"model.init_from={path}: no config.json (expected a Hugging Face model directory)")
    theirs = _arch_of(LlamaConfig.from_pretrained(str(p)))
    ours = arch.model_dump()
    diff = [f"model.arch.{k}: recipe {ours[k]!r}, checkpoint {v!r}" for k, v in theirs.items() if ours[k] != v]
    if diff:
        raise UserError(f"model.init_from={path} does not match the recipe's architecture: " + "; ".join(diff))


def load_hf_weights(path: str, tie: bool) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise UserError(f"model.init_from={path}: no *.safetensors file")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update({k: v.float() for k, v in load_file(str(f)).items()})
    if tie:
        sd.setdefault("lm_head.weight", sd["model.embed_tokens.weight"])
    return sd


def _rebuild_rotary(model, device: torch.device) -> None:
    """``inv_freq`` is a non-persistent buffer: ``to_empty`` leaves it garbage and no state dict
    carries it, so the rotary module is made again on the device."""
    non_persistent = {
        f"{mod_name}.{b}" if mod_name else b
        for mod_name, mod in model.named_modules()
        for b in getattr(mod, "_non_persistent_buffers_set", ())
    }
    expected = {"model.rotary_emb.inv_freq", "model.rotary_emb.original_inv_freq"}
    if not non_persistent <= expected:
        raise RuntimeError(f"unexpected non-persistent buffers {sorted(non_persistent - expected)}: "
                           "this transformers version needs a new materialization rule")
    rot = model.model.rotary_emb
    with torch.device(device):
        model.model.rotary_emb = type(rot)(config=model.config)


def param_dtype(cfg: TrainingRun, device: torch.device) -> torch.dtype | None:
    mp = cfg.train.mixed_precision
    if mp == "bf16" or (mp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def checkpoint_layers(model, every: int = 1) -> None:
    """Recompute every ``every``-th decoder layer in backward, the others keeping their activations
    (non-reentrant: the recompute re-runs FSDP2's unshard hooks). transformers 5.x's
    ``activation_checkpointing_enable(every_n_layers=...)`` (transformers/modeling_utils.py)."""
    kwargs = {"use_reentrant": False}
    if every == 1:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        return
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is None or "every_n_layers" not in inspect.signature(enable).parameters:
        raise UserError(f"train.checkpoint_every={every} needs a transformers whose activation_checkpointing_enable "
                        f"takes every_n_layers (5.25 does; this is {transformers_version()}); use 1")
    enable(activation_checkpointing_kwargs=kwargs, every_n_layers=every)


def transformers_version() -> str:
    import transformers

    return transformers.__version__


def compile_layers(model, backend="inductor") -> None:
    """``torch.compile`` each decoder layer, whole (``fullgraph``: a graph break fails loudly
    instead of leaving the layer in eager mode).

    Under activation checkpointing Dynamo refuses a layer whose forward has a Python side effect
    it cannot replay in the recompute, and transformers 5.x's attention has one (the ``kernels``
    package sets a context variable, kernels/_internals/layer/layer.py): without the flag below no
    layer is compiled at all. The flag skips replaying that side effect in backward, as torchtitan
    does for every compiled model (pytorch/torchtitan torchtitan/distributed/compile.py; the flag:
    torch 2.13 torch/_dynamo/config.py).
    """
    torch._dynamo.config.skip_fwd_side_effects_in_bwd_under_checkpoint = True
    for layer in model.model.layers:
        layer.compile(backend=backend, fullgraph=True)


def token_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy, computed in fp32."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), input_ids[:, 1:].reshape(-1))


def compiled_loss(backend="inductor") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``token_loss`` compiled: the fp32 upcast fuses into the cross-entropy kernels, so neither the
    fp32 copy of the logits nor an fp32 gradient of them is materialized (for llama_1b's
    4 x 4096 x 65,024 logits, 4.3 GB each), memory a larger micro-batch can use."""
    return torch.compile(token_loss, backend=backend, fullgraph=True)


def build(cfg: TrainingRun, d: Dist, log: Callable[[str], None]):
    """The sharded model on ``d.device``, weights in float32 (master copy), compute in bf16 on GPU."""
    from transformers import LlamaForCausalLM

    arch = cfg.model.arch
    if cfg.model.init_from:
        check_init_from(cfg.model.init_from, arch)
    hf_cfg = hf_config(arch, cfg.model.attn_implementation)
    with torch.device("meta"):
        model = LlamaForCausalLM(hf_cfg)
    if cfg.train.activation_checkpointing:
        checkpoint_layers(model, cfg.train.checkpoint_every)
    if cfg.train.compile:
        compile_layers(model)
    pdt = param_dtype(cfg, d.device)
    mp = MixedPrecisionPolicy(param_dtype=pdt, reduce_dtype=torch.float32 if pdt else None)
    # One process: keep each layer's bf16 copy from forward to backward instead of casting it again
    # (with one rank FSDP2 skips the all-gather but still rebuilds the unsharded parameters on every
    # unshard: torch 2.13 torch/distributed/fsdp/_fully_shard/_fsdp_param_group.py wait_for_unshard)
    for layer in model.model.layers:
        fully_shard(layer, mesh=d.mesh, mp_policy=mp, reshard_after_forward=d.world > 1)
    fully_shard(model, mesh=d.mesh, mp_policy=mp, reshard_after_forward=False)
    model.to_empty(device=d.device)
    _rebuild_rotary(model, d.device)

    full: dict[str, torch.Tensor] = {}
    if d.is_main:
        if cfg.model.init_from:
            full = load_hf_weights(cfg.model.init_from, arch.tie_embeddings)
            log(f"model: weights from {cfg.model.init_from}")
        else:
            torch.manual_seed(cfg.run.seed)
            full = LlamaForCausalLM(hf_config(arch)).state_dict()
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    del full
    model.train()
    return model


def count_params(arch: LlamaArch) -> dict[str, int]:
    """Parameter counts from the architecture alone (no model built)."""
    h, kv = arch.hidden_size, arch.num_kv_heads * arch.head_dim
    attn = h * h * 2 + h * kv * 2
    mlp = 3 * h * arch.intermediate_size
    per_layer = attn + mlp + 2 * h
    embed = arch.vocab_size * h
    head = 0 if arch.tie_embeddings else embed
    total = embed + arch.num_layers * per_layer + h + head
    return {"total": total, "embedding": embed, "per_layer": per_layer}


def flops_per_token(arch: LlamaArch, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward), as torchtitan and the PaLM appendix count:
    6 x (parameters in matmuls, output projection included, input embedding lookup excluded)
    + 12 x layers x heads x head_dim x seq_len for attention scores and values (causal mask not
    discounted). Activation-checkpointing recompute is not counted (MFU, not HFU)."""
    n = count_params(arch)
    matmul = n["total"] - n["embedding"] + (n["embedding"] if arch.tie_embeddings else 0)
    return 6.0 * matmul + 12.0 * arch.num_layers * arch.num_heads * arch.head_dim * seq_len


def memory_estimate(cfg: TrainingRun, shards: int) -> dict[str, float]:
    """Bytes per GPU, roughly, before the allocator's overhead (bf16 compute, AdamW, FSDP2):

    - states: fp32 weights, fp32 gradients and AdamW's two fp32 moments, 16 bytes per parameter,
      divided over the ``shards`` processes that share them;
    - activations kept for backward, per layer that is not recomputed: about
      seq x batch x (16 x hidden + 8 x FFN) bytes in bf16 (norm, projection and SwiGLU inputs and
      outputs; flash/SDPA attention keeps no seq x seq matrix). A recomputed layer keeps only its
      input (2 x seq x batch x hidden); one layer's full activations exist during its recompute;
    - logits: seq x batch x vocab x 10 bytes (bf16 logits, their fp32 copy and its gradient).
    """
    a, t = cfg.model.arch, cfg.train
    tokens = t.seq_len * t.micro_batch_size
    full_layer = tokens * (16 * a.hidden_size + 8 * a.intermediate_size)
    recomputed = (a.num_layers + t.checkpoint_every - 1) // t.checkpoint_every if t.activation_checkpointing else 0
    kept = a.num_layers - recomputed
    acts = kept * full_layer + recomputed * 2 * tokens * a.hidden_size + (full_layer if recomputed else 0)
    return {"states": 16 * count_params(a)["total"] / shards, "activations": acts,
            "logits": 10 * tokens * a.vocab_size}


def hf_config_dict(cfg: TrainingRun) -> dict:
    return json.loads(hf_config(cfg.model.arch).to_json_string())
