"""Training batches drawn globally and split across processes.

Every process draws the same *global* batch from a generator seeded with the shared seed
(an epoch-wise shuffle of the whole training set, cut into batches of ``global_batch``) and
keeps its contiguous ``1/world_size`` share: rank ``r`` gets items ``r*b .. (r+1)*b - 1`` of
each global batch, ``b = global_batch / world_size``. The shares of a step are disjoint and
their concatenation in rank order is exactly the batch one process would draw with the same
seed and ``global_batch``, so N processes with ``b`` images each train on the same images as
one process with ``N*b``.

For DG-Net's positive pairs the other image of the same identity is drawn from the same
shared generator (for the whole global batch, then split), so pairs also match. Augmentation
randomness (flip, crop, erasing, dropout) is left to each process's own seed.

``start`` skips the first global batches by replaying the generator, so a run resumed at
iteration ``k`` (``--resume``) draws exactly the batches the uninterrupted run draws from
iteration ``k`` on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from ..config import ConfigError


def per_process_batch(global_batch: int, world_size: int, key: str) -> int:
    """``global_batch / world_size``; raises ``ConfigError`` unless it divides evenly."""
    if global_batch % world_size:
        raise ConfigError(
            f"{key}={global_batch} is the global batch (fastreid's convention) and must be "
            f"divisible by the number of processes ({world_size})"
        )
    return global_batch // world_size


def draw_positive(i: int, group: Sequence[int], u: float) -> int:
    """Another item of ``i``'s identity, chosen by the uniform number ``u`` in ``[0, 1)``.

    ``group`` lists the items of the identity (``i`` among them). With ``m = len(group)``:
    ``k = min(floor(u * (m - 1)), m - 2)``, then ``group[k]``, or ``group[-1]`` when that is
    ``i``: each of the ``m - 1`` other items has probability ``1 / (m - 1)`` and ``i`` is never
    drawn. ``i`` itself when the identity has one item. The one routine behind every positive
    pair (:class:`GlobalBatchSampler` with a shared torch generator,
    :meth:`~.pairs.PositivePairDataset.positive_index` with Python's ``random``).
    """
    m = len(group)
    if m == 1:
        return i
    j = int(group[min(int(u * (m - 1)), m - 2)])
    return j if j != i else int(group[-1])


class GlobalBatchSampler(Sampler[list]):
    """Infinite batch sampler of this process's share of each global batch.

    Args:
        num_items: size of the data set.
        global_batch: images per step over all processes (``DATALOADER.IMS_PER_BATCH``).
        rank, world_size: this process and the number of processes.
        seed: the shared seed (the same on every process).
        groups: for positive pairs, the item indices of each identity (lists): the sampler
            then yields ``(i, j)`` with ``j`` another item of ``i``'s identity (``i`` itself
            when the identity has one image). ``None``: it yields plain indices.
        start: global batches already drawn (the iteration a resumed run starts at): they
            are skipped by replaying the shared generator (about 2 µs per skipped batch).

    Raises:
        ValueError: fewer items than ``global_batch``, or ``start < 0``.

    Each epoch is a fresh permutation; the last incomplete global batch of an epoch is
    dropped (``drop_last``).
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        groups: Sequence[Sequence[int]] | None = None,
        start: int = 0,
    ):
        if start < 0:
            raise ValueError(f"start={start}: the number of batches to skip must be >= 0")
        if num_items < global_batch:
            raise ValueError(
                f"{num_items} training images, fewer than the global batch of {global_batch}"
            )
        self.num_items = num_items
        self.global_batch = global_batch
        self.rank, self.world_size = rank, world_size
        self.batch = per_process_batch(global_batch, world_size, "DATALOADER.IMS_PER_BATCH")
        self.seed = seed
        self.start = start
        self._group_of = None
        if groups is not None:
            self._groups = [torch.as_tensor(list(g), dtype=torch.int64) for g in groups]
            self._group_of = torch.empty(num_items, dtype=torch.int64)
            for k, g in enumerate(self._groups):
                self._group_of[g] = k

    def _positives(self, idx: torch.Tensor, gen: torch.Generator) -> list[int]:
        """For each item of ``idx`` another item of its group (uniform, never itself when the
        group has two or more items)."""
        u = torch.rand(len(idx), generator=gen, dtype=torch.float64)
        return [
            draw_positive(i, self._groups[int(self._group_of[i])], v)
            for i, v in zip(idx.tolist(), u.tolist())
        ]

    def __iter__(self) -> Iterator[list]:
        gen = torch.Generator().manual_seed(self.seed)
        lo, hi = self.rank * self.batch, (self.rank + 1) * self.batch
        skip = self.start
        while True:
            perm = torch.randperm(self.num_items, generator=gen)
            for offset in range(0, self.num_items - self.global_batch + 1, self.global_batch):
                if skip:  # replay: the same draws as the batch would make, nothing built
                    skip -= 1
                    if self._group_of is not None:
                        torch.rand(self.global_batch, generator=gen, dtype=torch.float64)
                    continue
                batch = perm[offset : offset + self.global_batch]
                if self._group_of is None:
                    yield batch[lo:hi].tolist()
                else:  # positives drawn for the whole global batch keep gen in step
                    pos = self._positives(batch, gen)
                    yield list(zip(batch[lo:hi].tolist(), pos[lo:hi]))

    def __len__(self) -> int:  # batches per epoch (the iterator itself never ends)
        return self.num_items // self.global_batch
