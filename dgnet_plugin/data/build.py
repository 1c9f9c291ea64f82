"""Loaders built from torchreid datasets (torchreid names or ``market_layout``)."""

from __future__ import annotations

import functools
import os

import torch
from torch.utils.data import DataLoader

from ..config import ConfigError
from ..utils import torchreid_compat as tr
from .datasets import DatasetNotFoundError, market_layout_help
from .pairs import ImageListDataset, PositivePairDataset
from .transforms import build_random_erasing, build_transforms


@functools.lru_cache(maxsize=16)
def open_dataset(name: str, root: str):
    """The torchreid dataset ``name`` under ``root`` (scanned once per process).

    Raises:
        ConfigError: ``name`` is neither a torchreid dataset nor registered by a plugin.
        DatasetNotFoundError: the files are not there; the message names the folders and layout.
    """
    registry = tr.image_dataset_registry()
    if name not in registry:
        raise ConfigError(
            f"DATASETS name '{name}' is unknown; choose one of: {', '.join(sorted(registry))} "
            "(market_layout = any folder in the Market-1501 layout)"
        )
    # torchreid downloads a missing dataset (which needs network access and the 'six'
    # package): check its folder first and stop with instructions instead.
    folder = os.path.abspath(os.path.join(root, getattr(registry[name], "dataset_dir", "")))
    try:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"'{folder}' does not exist")
        return tr.init_image_dataset(name, root=root, mode="train", verbose=False)
    except DatasetNotFoundError:
        raise
    except (RuntimeError, FileNotFoundError) as e:
        raise DatasetNotFoundError(
            f"dataset '{name}' not found under DATASETS.ROOT='{os.path.abspath(root)}': {e}.\n"
            f"torchreid expects '{name}' in '{folder}' (for Market-1501: <root>/market1501/ "
            "holding bounding_box_train/, query/, bounding_box_test/, or the extracted "
            "Market-1501-v15.09.15/ folder). For a folder of your own use "
            "DATASETS.NAMES ('market_layout',) and " + market_layout_help("<DATASETS.ROOT>")
        ) from None


def load_train_set(cfg):
    """Merged training items ``[(path, pid, camid, dsetid)]`` of ``DATASETS.NAMES`` and the
    number of identities (pids relabelled to ``0..N-1``, offset per dataset by torchreid)."""
    sets = [open_dataset(n, cfg.DATASETS.ROOT) for n in cfg.DATASETS.NAMES]
    merged = sets[0] if len(sets) == 1 else sum(sets)
    return list(merged.train), merged.num_train_pids


def _loader(dataset, batch_size, shuffle, workers, seed=0, drop_last=False) -> DataLoader:
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        generator=gen,
        persistent_workers=workers > 0 and shuffle,
    )


def _forever(loader: DataLoader):
    while True:
        yield from loader


def build_pair_streams(cfg, items):
    """DG-Net's two independent shuffled streams of :class:`PositivePairDataset` batches
    (``DATALOADER.IMS_PER_BATCH`` each), as infinite iterators."""
    if len(items) < cfg.DATALOADER.IMS_PER_BATCH:
        raise ValueError(
            f"{len(items)} training images, fewer than DATALOADER.IMS_PER_BATCH="
            f"{cfg.DATALOADER.IMS_PER_BATCH}"
        )
    ds = PositivePairDataset(items, build_transforms(cfg, True), build_random_erasing(cfg))
    workers = cfg.DATALOADER.NUM_WORKERS
    bs = cfg.DATALOADER.IMS_PER_BATCH
    return tuple(
        _forever(_loader(ds, bs, True, workers, cfg.SEED + k, drop_last=True)) for k in (1, 2)
    )


def build_train_loader(cfg, items):
    """Infinite iterator of ``{img (erased), pid}`` batches for a plain re-ID model."""
    ds = ImageListDataset(items, build_transforms(cfg, True), build_random_erasing(cfg))
    bs = cfg.DATALOADER.IMS_PER_BATCH
    return _forever(_loader(ds, bs, True, cfg.DATALOADER.NUM_WORKERS, cfg.SEED, drop_last=True))


def build_test_sets(cfg, names=None) -> dict[str, dict]:
    """``{name: {'query': loader, 'gallery': loader}}`` for ``DATASETS.TESTS`` (or ``names``).

    Batches hold ``img`` (test transform), ``pid``, ``camid`` and ``impath``.
    """
    out = {}
    tf = build_transforms(cfg, False)
    for name in names or cfg.DATASETS.TESTS:
        ds = open_dataset(name, cfg.DATASETS.ROOT)
        out[name] = {
            split: _loader(
                ImageListDataset(getattr(ds, split), tf),
                cfg.TEST.IMS_PER_BATCH,
                False,
                cfg.DATALOADER.NUM_WORKERS,
            )
            for split in ("query", "gallery")
        }
    return out
