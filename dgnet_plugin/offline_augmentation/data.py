"""Training on real + generated images: the generated set's items in the real label space
and the loader that mixes them (a fixed share per batch, or one shuffled pool)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader

from ..data.datasets import parse_market_name
from ..data.generated import GeneratedSetError
from ..data.pairs import ImageListDataset
from ..data.sample import GENERATED
from ..data.samplers import PooledBatchSampler, RatioBatchSampler
from ..data.transforms import build_random_erasing, build_transforms
from ..utils import comm


def label_generated(samples: Sequence[dict], real_items: Sequence, labelled: bool = True):
    """Training items ``(path, label, camid, 0)`` of generated ``samples``
    (:func:`~dgnet_plugin.data.generated.read_generated_set`) in the label space of the real
    training items ``real_items`` (torchreid's ``(path, label, camid, dsetid)``, labels relabelled
    ``0..K-1`` from the Market pids of the file names): a generated image takes the label of
    its source's identity. ``labelled=False`` (LSRO's unlabelled images): label -1.

    Raises:
        GeneratedSetError: a source identity that the real training set does not have.
    """
    mapping = {}
    for item in real_items:
        mapping.setdefault(parse_market_name(item[0])[0], int(item[1]))
    items = []
    for s in samples:
        if not labelled or s["pid"] < 0:  # source_pid -1: an image without identity (LSRO)
            items.append((s["impath"], -1, s["camid"], 0))
            continue
        if s["pid"] not in mapping:
            raise GeneratedSetError(
                f"generated image '{s['impath']}' comes from identity {s['pid']}, which the real "
                "training set (DATASETS.NAMES) does not have; generate from the same training "
                "set, or train with an unlabelled mode (LOSS.LABEL.GENERATED lsro / argmax)"
            )
        items.append((s["impath"], mapping[s["pid"]], s["camid"], 0))
    return items


class MixedImageDataset(ImageListDataset):
    """:class:`~dgnet_plugin.data.pairs.ImageListDataset` of real items followed by generated
    items; each
    sample also has ``generated`` (``bool``), the flag the label-assignment loss reads."""

    def __init__(self, real_items, generated_items, transform, erase=None, mode="RGB"):
        super().__init__(list(real_items) + list(generated_items), transform, erase, mode)
        self.num_real = len(real_items)

    def __getitem__(self, i: int) -> dict:
        out = super().__getitem__(i)
        out[GENERATED] = i >= self.num_real
        return out


def build_mixed_train_loader(
    cfg,
    real_items,
    generated_items,
    generated_per_batch,
    start=0,
    real_per_batch=None,
    pooled=False,
):
    """Infinite iterator of ``{img (erased), pid, camid, impath, generated}`` batches with
    ``real_per_batch`` (default ``SOLVER.IMS_PER_BATCH``) real and ``generated_per_batch``
    generated images per global step (:class:`~dgnet_plugin.data.samplers.RatioBatchSampler`; this
    process gets
    its share of each), from iteration ``start`` on. ``generated_per_batch`` 0: real images
    only (the baseline); ``real_per_batch`` 0: generated images only.

    ``pooled`` True (``GENERATED.MIXING pool``, LSRO's released ``cnn_train_dag.m``): every
    batch is ``real_per_batch`` images drawn from one shuffled pool of all real and generated
    items (:class:`~dgnet_plugin.data.samplers.PooledBatchSampler`; an epoch is the pool) and
    ``generated_per_batch`` is not read."""
    if real_per_batch is None:
        real_per_batch = cfg.SOLVER.IMS_PER_BATCH
    ds = MixedImageDataset(
        real_items if real_per_batch else [],
        generated_items if generated_per_batch or pooled else [],
        build_transforms(cfg, True),
        build_random_erasing(cfg),
        cfg.INPUT.FORMAT,
    )
    rank, world = comm.get_rank(), comm.get_world_size()
    if pooled:
        sampler = PooledBatchSampler(len(ds), real_per_batch, rank, world, cfg.SEED, start)
    else:
        sampler = RatioBatchSampler(
            ds.num_real,
            len(ds) - ds.num_real,
            real_per_batch,
            generated_per_batch,
            rank,
            world,
            cfg.SEED,
            start,
        )
    workers = cfg.DATALOADER.NUM_WORKERS
    loader = DataLoader(
        ds,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(cfg.SEED + 7919 * rank + 104729 * start),
        persistent_workers=workers > 0,
    )
    return iter(loader)
