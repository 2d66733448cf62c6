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
