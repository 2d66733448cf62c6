"""How the trainer shards the model for one process (in-process gloo group of one, CPU)."""

from __future__ import annotations

import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch.distributed.fsdp._fully_shard._fsdp_param_group import FSDPParamGroup  # noqa: E402

from workloads.train import distributed, recipes  # noqa: E402
from workloads.train import model as mdl  # noqa: E402


@pytest.fixture
def one_process(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    d = distributed.setup("cpu")
    yield d
    distributed.teardown()


def test_one_process_builds_each_layers_parameters_once_per_micro_batch(one_process, monkeypatch):
    """With one rank there is nothing to free between forward and backward: rebuilding each layer's
    unsharded (bf16 on GPU) parameters again for backward only costs time."""
    rebuilt = []
    original = FSDPParamGroup.wait_for_unshard

    def counting(self):
        if self._all_gather_result is not None:  # an unshard that does work
            rebuilt.append(self)
        return original(self)

    monkeypatch.setattr(FSDPParamGroup, "wait_for_unshard", counting)
    cfg = recipes.get("debug_tiny")
    model = mdl.build(cfg, one_process, lambda m: None)
    x = torch.randint(0, cfg.model.arch.vocab_size, (2, 32))
    rebuilt.clear()
    for _ in range(2):  # two micro-batches of one step
        model(input_ids=x).logits.float().mean().backward()
    groups = cfg.model.arch.num_layers + 1  # each decoder layer, and the root (embeddings, norm, head)
    assert len(rebuilt) == 2 * groups, len(rebuilt)
