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

:class:`IdentityBatchSampler` (P identities x K images, torchreid's ``RandomIdentitySampler``)
and :class:`CrossModalityBatchSampler` (P x (K visible + K infrared)) build metric-learning
batches; both are infinite and depend only on their seed.

``start`` skips the first global batches by replaying the generator, so a run resumed at
iteration ``k`` (``--resume``) draws exactly the batches the uninterrupted run draws from
iteration ``k`` on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from ..config import ConfigError
from ..utils import torchreid_compat as tr
from .sample import INFRARED, MODALITIES, VISIBLE


def per_process_batch(global_batch: int, world_size: int, key: str) -> int:
    """``global_batch / world_size``; raises ``ConfigError`` unless it divides evenly."""
    if global_batch % world_size:
        raise ConfigError(
            f"{key}={global_batch} is the global batch (fastreid's convention) and must be "
            f"divisible by the number of processes ({world_size})"
        )
    return global_batch // world_size


def epoch_batches(
    num_items: int, global_batch: int, world_size: int, start: int, items: str, batch: str
) -> int:
    """The checks of a sampler that cuts epochs of ``num_items`` into global batches; returns
    this process's share of a batch (:func:`per_process_batch`). ``items`` / ``batch`` name
    them in the messages (e.g. "training images", "global batch").

    Raises:
        ValueError: ``start < 0`` (batches to skip), or fewer items than one batch.
        ConfigError: ``global_batch`` not divisible by ``world_size``.
    """
    if start < 0:
        raise ValueError(f"start={start}: the number of batches to skip must be >= 0")
    if num_items < global_batch:
        raise ValueError(f"{num_items} {items}, fewer than the {batch} of {global_batch}")
    return per_process_batch(global_batch, world_size, "SOLVER.IMS_PER_BATCH")


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
        global_batch: images per step over all processes (``SOLVER.IMS_PER_BATCH``).
        rank, world_size: this process and the number of processes.
        seed: the shared seed (the same on every process).
        groups: for positive pairs, the item indices of each identity (lists): the sampler
            then yields ``(i, j)`` with ``j`` another item of ``i``'s identity (``i`` itself
            when the identity has one image). ``None``: it yields plain indices.
        start: global batches already drawn (the iteration a resumed run starts at): they
            are skipped by replaying the shared generator (about 2 µs per skipped batch).
        shuffle: False = every epoch in the items' own order ``0..num_items-1``
            (``DATALOADER.SHUFFLE``; LSRO's DCGAN fork reads its ``glob`` list in order every
            epoch, layumi/DCGAN-tensorflow ``model.py`` ``train``); positives are still drawn.

    Raises:
        ValueError: fewer items than ``global_batch``, or ``start < 0``.

    Each epoch is a fresh permutation (or the items' order); the last incomplete global batch
    of an epoch is dropped (``drop_last``).
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
        shuffle: bool = True,
    ):
        self.batch = epoch_batches(
            num_items, global_batch, world_size, start, "training images", "global batch"
        )
        self.num_items = num_items
        self.global_batch = global_batch
        self.rank, self.world_size = rank, world_size
        self.seed = seed
        self.start = start
        self.shuffle = bool(shuffle)
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
            if self.shuffle:
                perm = torch.randperm(self.num_items, generator=gen)
            else:
                perm = torch.arange(self.num_items)
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


class _Seeded:
    """Python's and NumPy's global random states seeded with ``seed`` inside the block and
    restored after it (torchreid's samplers draw from the global states)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self._py, self._np = random.getstate(), np.random.get_state()
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)

    def __exit__(self, *exc):
        random.setstate(self._py)
        np.random.set_state(self._np)


class IdentityBatchSampler(Sampler[list]):
    """Infinite P x K batches: ``num_ids`` identities with ``num_instances`` images each.

    Each epoch is torchreid's ``RandomIdentitySampler`` pass (identities with fewer than K
    images are drawn with replacement; every image of an identity is used once per epoch, in
    chunks of K), cut into batches of ``P * K`` indices: identity by identity, K consecutive
    indices each. torchreid draws from Python's and NumPy's global generators; here they are
    seeded with ``seed + epoch`` for the pass and restored afterwards, so the batches depend on
    ``seed`` only and the caller's random state is untouched.

    Args:
        pids: the identity of each item (``items[i][1]`` of torchreid's item tuples, or the
            ``pid`` field of sample dicts).
        num_ids, num_instances: P and K.
        seed: the batches are a function of it.

    Raises:
        ValueError: fewer than P identities.
    """

    def __init__(self, pids: Sequence[int], num_ids: int, num_instances: int, seed: int = 0):
        if len(set(pids)) < num_ids:
            raise ValueError(f"{len(set(pids))} identities, fewer than P={num_ids} per batch")
        self.batch = num_ids * num_instances
        self.seed = seed
        self._torchreid = tr.RandomIdentitySampler(
            [(None, int(p)) for p in pids], self.batch, num_instances
        )

    def __iter__(self) -> Iterator[list]:
        epoch = 0
        while True:
            with _Seeded(self.seed + epoch):
                flat = list(iter(self._torchreid))
            for lo in range(0, len(flat) - self.batch + 1, self.batch):
                yield [int(i) for i in flat[lo : lo + self.batch]]
            epoch += 1

    def __len__(self) -> int:  # about one epoch (torchreid's estimate / batch)
        return max(len(self._torchreid) // self.batch, 1)


#: ``DATALOADER.VI_SAMPLER`` values (:class:`CrossModalityBatchSampler` ``mode``)
VI_SAMPLERS = ("epoch", "agw")


class CrossModalityBatchSampler(Sampler[list]):
    """Infinite P x (K visible + K infrared) batches for cross-modality re-ID.

    Each epoch shuffles the identities that have images of both modalities and cuts them into
    groups of P (the last incomplete group is dropped); for each identity of a group it draws
    K of its visible and K of its infrared images (without replacement when it has at least
    K, else with replacement). A batch lists, identity by identity, the K visible then the K
    infrared indices: ``2 * P * K`` indices. Draws come from a ``torch.Generator`` seeded
    with ``seed``.

    ``mode="agw"`` (``DATALOADER.VI_SAMPLER``): AGW's ``IdentitySampler``
    (mangye16/Cross-Modal-Re-ID-baseline ``utils.py``) instead: every batch draws its P
    identities at random (distinct within the batch, independently of the other batches) and
    each identity's K visible and K infrared images *with* replacement
    (``np.random.choice(pos, K)``).

    Args:
        pids, modalities: per item, its identity and its ``modality`` field (``"visible"`` |
            ``"infrared"``, :data:`~.sample.MODALITIES`); :meth:`from_samples` reads both
            from sample dicts.
        num_ids, num_instances: P and K.

    Raises:
        ValueError: an unknown modality, or fewer than P identities seen in both modalities.
    """

    def __init__(
        self,
        pids: Sequence[int],
        modalities: Sequence[str],
        num_ids: int,
        num_instances: int,
        seed: int = 0,
        mode: str = "epoch",
    ):
        if mode not in VI_SAMPLERS:
            raise ValueError(f"DATALOADER.VI_SAMPLER '{mode}': one of {', '.join(VI_SAMPLERS)}")
        if len(pids) != len(modalities):
            raise ValueError(f"{len(pids)} pids but {len(modalities)} modalities")
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modality {sorted(unknown)}; expected one of {MODALITIES}")
        by = {VISIBLE: {}, INFRARED: {}}
        for i, (p, m) in enumerate(zip(pids, modalities)):
            by[m].setdefault(int(p), []).append(i)
        self.pids = sorted(set(by[VISIBLE]) & set(by[INFRARED]))
        if len(self.pids) < num_ids:
            raise ValueError(
                f"{len(self.pids)} identities have both visible and infrared images, fewer "
                f"than P={num_ids} per batch"
            )
        self._vis = [torch.as_tensor(by[VISIBLE][p]) for p in self.pids]
        self._ir = [torch.as_tensor(by[INFRARED][p]) for p in self.pids]
        self.num_ids, self.num_instances, self.seed = num_ids, num_instances, seed
        self.mode = mode

    @classmethod
    def from_samples(cls, samples: Sequence[dict], num_ids: int, num_instances: int, seed=0):
        """From sample dicts carrying ``pid`` and ``modality``."""
        return cls(
            [s["pid"] for s in samples],
            [s["modality"] for s in samples],
            num_ids,
            num_instances,
            seed,
        )

    def _draw(self, idx: torch.Tensor, gen: torch.Generator) -> list[int]:
        k = self.num_instances
        if len(idx) >= k:
            return idx[torch.randperm(len(idx), generator=gen)[:k]].tolist()
        return idx[torch.randint(len(idx), (k,), generator=gen)].tolist()

    def __iter__(self) -> Iterator[list]:
        gen = torch.Generator().manual_seed(self.seed)
        n, p = len(self.pids), self.num_ids
        if self.mode == "agw":
            k = self.num_instances
            while True:
                batch = []
                for u in torch.randperm(n, generator=gen)[:p].tolist():
                    for idx in (self._vis[u], self._ir[u]):
                        batch += idx[torch.randint(len(idx), (k,), generator=gen)].tolist()
                yield batch
        while True:
            order = torch.randperm(n, generator=gen).tolist()
            for lo in range(0, n - p + 1, p):
                batch: list[int] = []
                for u in order[lo : lo + p]:
                    batch += self._draw(self._vis[u], gen) + self._draw(self._ir[u], gen)
                yield batch

    def __len__(self) -> int:  # batches per epoch
        return len(self.pids) // self.num_ids


class RatioBatchSampler(Sampler[list]):
    """Infinite batches with a fixed real:generated ratio: each global batch holds
    ``real_per_batch`` real and ``generated_per_batch`` generated items (CamStyle: 128 real +
    46 camera-style images), and this process gets its contiguous share of each part.

    Items are indexed as in :class:`~dgnet_plugin.offline_augmentation.data.MixedImageDataset`:
    real ``0..num_real-1``,
    generated ``num_real..num_real+num_generated-1``. Each part is drawn as epoch-wise
    permutations of its own (the generated part cycles faster or slower than the real part),
    from two ``torch.Generator`` streams seeded with ``seed`` and ``seed + 1``; a batch lists
    this process's real indices, then its generated ones. ``start`` skips the first global
    batches (a resumed run draws the batches of the uninterrupted one). ``real_per_batch``
    0: generated images only (SPGAN's re-ID on the translated source).

    Raises:
        ValueError: a part larger than its item count, a count that does not divide by
            ``world_size``, or ``generated_per_batch > 0`` with no generated item.
    """

    def __init__(
        self,
        num_real: int,
        num_generated: int,
        real_per_batch: int,
        generated_per_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start: int = 0,
    ):
        if (
            real_per_batch < 0
            or generated_per_batch < 0
            or real_per_batch + generated_per_batch < 1
        ):
            raise ValueError(
                f"real_per_batch and generated_per_batch must be >= 0 with at least one image "
                f"per batch, got {real_per_batch} and {generated_per_batch}"
            )
        if num_real < real_per_batch:
            raise ValueError(f"{num_real} real images, fewer than {real_per_batch} per batch")
        if generated_per_batch and num_generated < generated_per_batch:
            raise ValueError(
                f"{num_generated} generated images, fewer than {generated_per_batch} per batch "
                "(GENERATED.PER_BATCH): generate them first, or set it to 0"
            )
        self.num_real, self.num_generated = num_real, num_generated
        self.real = per_process_batch(real_per_batch, world_size, "SOLVER.IMS_PER_BATCH")
        self.gen = per_process_batch(generated_per_batch, world_size, "GENERATED.PER_BATCH")
        self.real_per_batch, self.generated_per_batch = real_per_batch, generated_per_batch
        self.rank, self.seed, self.start = rank, seed, start

    @staticmethod
    def _stream(n: int, k: int, seed: int) -> Iterator[torch.Tensor]:
        """Chunks of ``k`` indices from successive permutations of ``range(n)`` (chunks may
        straddle two permutations, so no image is dropped)."""
        gen = torch.Generator().manual_seed(seed)
        buf = torch.empty(0, dtype=torch.int64)
        while True:
            while len(buf) < k:
                buf = torch.cat([buf, torch.randperm(n, generator=gen)])
            yield buf[:k]
            buf = buf[k:]

    def __iter__(self) -> Iterator[list]:
        real = self._stream(self.num_real, self.real_per_batch, self.seed) if self.real else None
        gen = (
            self._stream(self.num_generated, self.generated_per_batch, self.seed + 1)
            if self.generated_per_batch
            else None
        )
        step = 0
        while True:
            r = next(real) if real is not None else None
            g = next(gen) if gen is not None else None
            step += 1
            if step <= self.start:
                continue
            out = (
                [] if r is None else r[self.rank * self.real : (self.rank + 1) * self.real].tolist()
            )
            if g is not None:
                lo, hi = self.rank * self.gen, (self.rank + 1) * self.gen
                out += (g[lo:hi] + self.num_real).tolist()
            yield out

    def __len__(self) -> int:  # batches per epoch of the real part (else the generated one)
        if self.real_per_batch:
            return self.num_real // self.real_per_batch
        return self.num_generated // self.generated_per_batch


#: ``GENERATED.MIXING`` values: ``fixed`` (:class:`RatioBatchSampler`) | ``pool``
#: (:class:`PooledBatchSampler`)
MIXINGS = ("fixed", "pool")


class PooledBatchSampler(Sampler[list]):
    """Infinite batches drawn from one shuffled pool of real and generated items (LSRO's
    released re-ID training, layumi/Person-reID_GAN ``examples/cnn_train_dag.m``: every epoch
    ``randperm`` of the whole ``imdb`` of real + generated images, cut into batches of
    ``batchSize``, the last one holding the rest); ``GENERATED.MIXING pool``.

    Items are indexed as in :class:`~dgnet_plugin.offline_augmentation.data.MixedImageDataset`
    (real first, then generated); each epoch is a permutation of all ``num_items`` of them from a
    ``torch.Generator`` seeded with ``seed``, cut into global batches of ``global_batch``, so
    every item is drawn once per epoch and a batch holds on average ``global_batch x
    num_generated / num_items`` generated items (a hypergeometric count). The last batch of an
    epoch holds the ``num_items mod global_batch`` remaining items (the released loop's
    ``min(batchSize, numel(subset) - t + 1)``); it is kept when it splits evenly over the
    processes with at least two items each (batch norm needs two), else skipped. This
    process gets its contiguous share of each batch. ``start`` skips the first batches (a
    resumed run draws the batches of the uninterrupted one).

    Raises:
        ValueError: fewer items than ``global_batch``, or ``start < 0``; ``ConfigError``:
            ``global_batch`` not divisible by ``world_size``.
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start: int = 0,
    ):
        self.batch = epoch_batches(
            num_items, global_batch, world_size, start, "real + generated images", "batch"
        )
        self.num_items, self.global_batch = num_items, global_batch
        self.rank, self.world_size, self.seed, self.start = rank, world_size, seed, start
        rest = num_items % global_batch
        self.rest = rest if rest % world_size == 0 and rest // world_size >= 2 else 0

    def __iter__(self) -> Iterator[list]:
        gen = torch.Generator().manual_seed(self.seed)
        skip = self.start
        full = self.num_items // self.global_batch
        while True:
            perm = torch.randperm(self.num_items, generator=gen)
            for k in range(len(self)):
                if skip:
                    skip -= 1
                    continue
                size = self.global_batch if k < full else self.rest
                share = size // self.world_size
                lo = k * self.global_batch + self.rank * share
                yield perm[lo : lo + share].tolist()

    def __len__(self) -> int:  # batches per epoch (the iterator itself never ends)
        return self.num_items // self.global_batch + (1 if self.rest else 0)
