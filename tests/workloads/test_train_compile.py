"""torch.compile of the decoder layers, with and without activation checkpointing, on CPU.

Dynamo's ``aot_eager`` backend (no C++ compiler needed) wrapped in a counter: the graphs compiled
are counted, and gradients are compared with the eager model's. A few seconds.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch._dynamo.testing import CompileCounterWithBackend  # noqa: E402

from workloads.train import recipes  # noqa: E402
from workloads.train.model import checkpoint_layers, compile_layers, hf_config  # noqa: E402


def _grads(model, x) -> dict:
    model.zero_grad(set_to_none=True)
    model(input_ids=x).logits.float().logsumexp(-1).mean().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "activation-checkpointing"])
def test_every_decoder_layer_is_compiled_and_gives_the_eager_gradients(checkpointing):
    # Dynamo's configuration is global: start from its default, leave it as found
    with torch._dynamo.config.patch(skip_fwd_side_effects_in_bwd_under_checkpoint=False):
        _compile_and_compare(checkpointing)


def _compile_and_compare(checkpointing: bool) -> None:
    from transformers import LlamaForCausalLM

    torch._dynamo.reset()
    arch = recipes.get("debug_tiny").model.arch
    torch.manual_seed(0)
    model = LlamaForCausalLM(hf_config(arch))
    if checkpointing:
        checkpoint_layers(model)
    x = torch.randint(0, arch.vocab_size, (2, 64))
    eager = _grads(model, x)
    counter = CompileCounterWithBackend("aot_eager")
    compile_layers(model, backend=counter)
    compiled = _grads(model, x)
    torch._dynamo.reset()
    assert counter.frame_count >= 1, "no decoder layer was compiled"
    for name, g in eager.items():
        assert torch.allclose(g, compiled[name], rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("every, recomputed", [(1, [0, 1, 2, 3]), (2, [0, 2]), (3, [0, 3])])
def test_activation_checkpointing_every_n_layers_recomputes_those_only(every, recomputed):
    from transformers import LlamaForCausalLM

    from workloads.train.config import apply_overrides

    cfg = apply_overrides(recipes.get("debug_tiny"), [f"train.checkpoint_every={every}"])
    arch = cfg.model.arch.model_copy(update={"num_layers": 4})
    model = LlamaForCausalLM(hf_config(arch))
    checkpoint_layers(model, cfg.train.checkpoint_every)
    assert [i for i, layer in enumerate(model.model.layers) if layer.gradient_checkpointing] == recomputed


def test_the_memory_estimate_by_hand_for_lucie_7b():
    from workloads.train.config import apply_overrides
    from workloads.train.model import memory_estimate

    full = recipes.get("lucie_7b")  # 2 x 4096 tokens per micro-batch, every layer recomputed
    est = memory_estimate(full, shards=32)
    tokens, h, ffn = 2 * 4096, 4096, 12288
    layer = tokens * (16 * h + 8 * ffn)
    assert est["states"] == 16 * 6_706_958_336 / 32
    assert est["activations"] == 32 * 2 * tokens * h + layer
    assert est["logits"] == 10 * tokens * 65024
    every4 = memory_estimate(apply_overrides(full, ["train.checkpoint_every=4"]), shards=32)
    assert every4["activations"] == 24 * layer + 8 * 2 * tokens * h + layer  # 8 recomputed, 24 kept
    off = memory_estimate(apply_overrides(full, ["train.activation_checkpointing=false"]), shards=32)
    assert off["activations"] == 32 * layer


def test_the_loss_compiles_whole_and_equals_the_eager_loss():
    from workloads.train.model import compiled_loss, token_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 16, 512, dtype=torch.bfloat16, requires_grad=True)
    ids = torch.randint(0, 512, (2, 16))
    eager = token_loss(logits, ids)
    (g_eager,) = torch.autograd.grad(eager, logits)
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = compiled_loss(backend=counter)(logits, ids)
    (g_compiled,) = torch.autograd.grad(compiled, logits)
    torch._dynamo.reset()
    assert counter.frame_count == 1  # one graph: a break would have raised (fullgraph)
    assert torch.allclose(eager, compiled) and torch.allclose(g_eager.float(), g_compiled.float())
