"""The order in which a run reads its data, as a pure function of (seed, sample index).

Every epoch visits the shards in a seeded random order and each shard's rows in a seeded random
order; memory holds one permutation of shard indices and one of a shard's rows, whatever the
corpus size. The whole data position is one integer, ``samples_seen``, saved in checkpoints:
resuming at step ``s`` reads exactly what an uninterrupted run would have read.

Step ``s`` consumes the global samples ``[s*G, (s+1)*G)`` with ``G = micro_batch x grad_accum x
world``; micro-batch ``m`` of rank ``r`` takes ``micro_batch`` consecutive ones at offset
``(m*world + r) * micro_batch``.
"""

from __future__ import annotations

import bisect

import numpy as np
import torch

from ..data.shards import PackedDataset


class SampleOrder:
    def __init__(self, sizes: list[int], seed: int):
        self.sizes, self.seed, self.total = list(sizes), seed, sum(sizes)
        self._epoch_cache: tuple[int, np.ndarray, list[int]] | None = None
        self._rows_cache: dict[tuple[int, int], np.ndarray] = {}

    def _epoch(self, epoch: int):
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.sizes))
            bounds = np.cumsum([self.sizes[i] for i in order]).tolist()
            self._epoch_cache = (epoch, order, bounds)
        return self._epoch_cache[1], self._epoch_cache[2]

    def _rows(self, epoch: int, shard: int) -> np.ndarray:
        key = (epoch, shard)
        if key not in self._rows_cache:
            if len(self._rows_cache) > 4:
                self._rows_cache.clear()
            self._rows_cache[key] = np.random.default_rng([self.seed, epoch, shard + 1]).permutation(self.sizes[shard])
        return self._rows_cache[key]

    def locate(self, index: int) -> tuple[int, int]:
        """Global sample ``index`` -> (shard, row)."""
        epoch, pos = divmod(index, self.total)
        order, bounds = self._epoch(epoch)
        slot = bisect.bisect_right(bounds, pos)
        start = bounds[slot - 1] if slot else 0
        shard = int(order[slot])
        return shard, int(self._rows(epoch, shard)[pos - start])


class Batches:
    def __init__(self, dataset: PackedDataset, seed: int, micro_batch: int, grad_accum: int, rank: int, world: int):
        self.ds = dataset
        self.order = SampleOrder(dataset.sizes, seed)
        self.micro_batch, self.grad_accum, self.rank, self.world = micro_batch, grad_accum, rank, world
        self.global_batch = micro_batch * grad_accum * world
        self.samples_seen = 0

    def next_step(self) -> list[torch.Tensor]:
        """This rank's ``grad_accum`` micro-batches for the next optimizer step."""
        base = self.samples_seen
        micro = []
        for m in range(self.grad_accum):
            first = base + (m * self.world + self.rank) * self.micro_batch
            rows = [self.ds.row(*self.order.locate(first + j)) for j in range(self.micro_batch)]
            micro.append(torch.from_numpy(np.stack(rows)))
        self.samples_seen += self.global_batch
        return micro

    @property
    def epoch(self) -> float:
        return self.samples_seen / self.order.total

    def state_dict(self) -> dict:
        return {"samples_seen": self.samples_seen, "global_batch": self.global_batch,
                "seed": self.order.seed, "dataset_sequences": self.order.total}

    def load_state_dict(self, state: dict) -> None:
        self.samples_seen = int(state["samples_seen"])
