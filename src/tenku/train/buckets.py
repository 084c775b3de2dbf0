"""Bucketed, resumable batch order that mixes durations, resolutions and aspect ratios.

Every sample has a bucket key ``(T, H, W)``. Each epoch, the samples of each bucket are shuffled
and cut into global batches of exactly ``batch_size`` (a short tail wraps around inside its bucket),
then the batches of all buckets are shuffled together. Every batch therefore holds one shape, and
successive batches change shape. The order depends only on ``(seed, epoch)``; the position
``(epoch, index)`` is the whole state, so a resumed run sees the same batches in the same order.

A global batch is laid out as ``[grad_accum][world_size][per_process]``; a process takes its
slice of each micro-step with :meth:`BucketBatchSampler.local_slice`. Sample ``j`` of global batch
``step`` draws its randomness from :func:`sample_generator(seed, step, j)`, so results do not depend
on how many processes share the batch.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from tenku.errors import TenkuError


class BucketBatchSampler:
    def __init__(self, keys: list[tuple[int, ...]], batch_size: int, seed: int = 0):
        if not keys:
            raise TenkuError("the dataset holds no usable samples for this split")
        self.keys = list(keys)
        self.batch_size = batch_size
        self.seed = seed
        self.buckets: dict[tuple, list[int]] = defaultdict(list)
        for i, k in enumerate(self.keys):
            self.buckets[tuple(k)].append(i)
        self.bucket_order = sorted(self.buckets)
        self.epoch = 0
        self.index = 0
        self._plan: list[list[int]] | None = None

    def __len__(self) -> int:
        """Batches per epoch."""
        return sum(-(-len(v) // self.batch_size) for v in self.buckets.values())

    def _make_plan(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch, 0x7E4C])
        batches = []
        for key in self.bucket_order:
            idx = np.array(self.buckets[key])
            idx = idx[rng.permutation(len(idx))]
            n = -(-len(idx) // self.batch_size) * self.batch_size
            idx = np.resize(idx, n)  # wrap the tail around inside the bucket
            batches.extend(idx.reshape(-1, self.batch_size).tolist())
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def next_batch(self) -> list[int]:
        """The next global batch (a list of sample indices, all of one bucket)."""
        if self._plan is None:
            self._plan = self._make_plan(self.epoch)
        if self.index >= len(self._plan):
            self.epoch += 1
            self.index = 0
            self._plan = self._make_plan(self.epoch)
        batch = self._plan[self.index]
        self.index += 1
        return batch

    def bucket_of(self, i: int) -> list[int]:
        return self.buckets[tuple(self.keys[i])]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed, "batch_size": self.batch_size,
                "num_samples": len(self.keys)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("num_samples") != len(self.keys):
            raise TenkuError(f"the checkpoint was trained on {state.get('num_samples')} samples but the data "
                             f"now holds {len(self.keys)}; resume with the same data folder and split")
        if state.get("batch_size") != self.batch_size:
            raise TenkuError(f"the checkpoint used batch_size {state.get('batch_size')}, this run "
                             f"{self.batch_size}; resume with the same batch size")
        self.epoch = int(state["epoch"])
        self.index = int(state["index"])
        self._plan = None

    @staticmethod
    def local_slice(batch: list[int], micro: int, grad_accum: int, rank: int, world: int) -> list[tuple[int, int]]:
        """(position in the global batch, sample index) pairs this process handles in micro-step ``micro``."""
        per = len(batch) // (grad_accum * world)
        start = (micro * world + rank) * per
        return [(j, batch[j]) for j in range(start, start + per)]


def check_divisible(batch_size: int, grad_accum: int, world: int) -> None:
    if batch_size % (grad_accum * world):
        raise TenkuError(f"batch_size {batch_size} must be divisible by grad_accum x processes "
                         f"= {grad_accum} x {world}; pick a batch size that is a multiple of {grad_accum * world}")


def sample_generator(seed: int, step: int, j: int) -> torch.Generator:
    """The random stream of sample ``j`` of global batch ``step``: the same in every process layout."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step * 65_537 + j * 257 + 12345) % (2**63 - 1))
    return g
