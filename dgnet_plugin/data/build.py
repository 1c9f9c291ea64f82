"""Loaders built from torchreid datasets (torchreid names or ``market_layout``)."""

from __future__ import annotations

import functools
import os

import torch
from torch.utils.data import DataLoader

from ..config import ConfigError
from ..utils import comm
from ..utils import torchreid_compat as tr
from .cross_modality import (
    CrossModalityDataset,
    ModalityImageDataset,
    collate_by_modality,
    modality_transforms,
)
from .datasets import DatasetNotFoundError, market_layout_help
from .pairs import ImageListDataset, PositivePairDataset
from .samplers import CrossModalityBatchSampler, GlobalBatchSampler
from .transforms import build_random_erasing, build_transforms


def parse_dataset_entry(entry: str, default_root: str) -> tuple[str, str]:
    """``(name, root)`` of a ``DATASETS.NAMES`` / ``DATASETS.TESTS`` entry: ``name`` (the
    dataset under ``default_root``, i.e. ``DATASETS.ROOT``) or ``name@root`` (under a root of
    its own; ``~`` is expanded, a relative root is relative to the working directory).

    Raises:
        ConfigError: an empty name or root around the ``@``.
    """
    name, sep, root = entry.partition("@")
    name, root = name.strip(), root.strip()
    if not name or (sep and not root):
        raise ConfigError(
            f"DATASETS entry '{entry}' must be 'name' (under DATASETS.ROOT) or 'name@/path/to/root'"
        )
    return name, os.path.abspath(os.path.expanduser(root if sep else default_root))


def dataset_label(entry: str, default_root: str) -> str:
    """The name results of ``entry`` are reported under (``metrics.json`` keys, the table,
    ``visrank/<label>``): ``name`` for an entry under ``DATASETS.ROOT``, ``name@<last folder
    of its root>`` for a ``name@root`` entry."""
    name, root = parse_dataset_entry(entry, default_root)
    return f"{name}@{os.path.basename(root)}" if "@" in entry else name


def open_dataset(name: str, root: str):
    """The torchreid dataset ``name`` under ``root`` (scanned once per process and absolute
    root: the same folder written two ways is scanned once).

    Raises:
        ConfigError: ``name`` is neither a torchreid dataset nor registered by a plugin.
        DatasetNotFoundError: the files are not there; the message names the folders and layout.
    """
    return _open_dataset(name, os.path.abspath(os.path.expanduser(root)))


@functools.lru_cache(maxsize=16)
def _open_dataset(name: str, root: str):
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
            f"dataset '{name}' not found under '{root}' (DATASETS.ROOT, or the root of a "
            f"'{name}@<root>' entry): {e}.\n"
            f"torchreid expects '{name}' in '{folder}' (for Market-1501: <root>/market1501/ "
            "holding bounding_box_train/, query/, bounding_box_test/, or the extracted "
            "Market-1501-v15.09.15/ folder). For a folder of your own use "
            "DATASETS.NAMES ('market_layout',) and " + market_layout_help("<DATASETS.ROOT>")
        ) from None


def load_train_set(cfg):
    """Merged training items ``[(path, pid, camid, dsetid)]`` of ``DATASETS.NAMES`` and the
    number of identities (pids relabelled to ``0..N-1``, offset per dataset by torchreid).
    Each entry is ``name`` or ``name@root`` (:func:`parse_dataset_entry`)."""
    if not cfg.DATASETS.NAMES:
        raise ConfigError("DATASETS.NAMES is empty: name at least one training set")
    sets = [open_dataset(*parse_dataset_entry(e, cfg.DATASETS.ROOT)) for e in cfg.DATASETS.NAMES]
    merged = sets[0] if len(sets) == 1 else sum(sets)
    return list(merged.train), merged.num_train_pids


def _test_loader(dataset, batch_size, workers) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
    )


def _train_loader(cfg, dataset, seed: int, groups=None, start: int = 0) -> DataLoader:
    """Infinite loader of this process's share of each global batch of
    ``SOLVER.IMS_PER_BATCH`` (:class:`GlobalBatchSampler`, shuffled with ``seed`` on
    every process, or in the items' order with ``DATALOADER.SHUFFLE`` False; the first
    ``start`` global batches skipped); worker seeds differ per process and per ``start``."""
    rank, world = comm.get_rank(), comm.get_world_size()
    shuffle = cfg.DATALOADER.get("SHUFFLE", True)
    sampler = GlobalBatchSampler(
        len(dataset), cfg.SOLVER.IMS_PER_BATCH, rank, world, seed, groups, start, shuffle
    )
    workers = cfg.DATALOADER.NUM_WORKERS
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        # worker seeds (augmentation): per process, and fresh after a resume
        generator=torch.Generator().manual_seed(seed + 7919 * rank + 104729 * start),
        persistent_workers=workers > 0,
    )


def build_pair_streams(cfg, items, start: int = 0):
    """DG-Net's two independent shuffled streams of :class:`PositivePairDataset` batches, as
    infinite iterators. ``SOLVER.IMS_PER_BATCH`` images per stream and step over all
    processes; this process gets its share (:class:`GlobalBatchSampler`), positives included.
    ``start``: the iteration to start at (a resumed run gets the batches of the uninterrupted
    run from there on)."""
    if len(items) < cfg.SOLVER.IMS_PER_BATCH:
        raise ValueError(
            f"{len(items)} training images, fewer than SOLVER.IMS_PER_BATCH="
            f"{cfg.SOLVER.IMS_PER_BATCH}"
        )
    ds = PositivePairDataset(
        items, build_transforms(cfg, True), build_random_erasing(cfg), cfg.INPUT.FORMAT
    )
    groups = list(ds.by_pid.values())
    return tuple(iter(_train_loader(cfg, ds, cfg.SEED + k, groups, start)) for k in (1, 2))


def build_train_loader(cfg, items, start: int = 0, seed_offset: int = 0, dataset=None):
    """Infinite iterator of ``{img (erased), pid}`` batches for a plain re-ID model (this
    process's share of each global batch of ``SOLVER.IMS_PER_BATCH``), from iteration
    ``start`` on. ``seed_offset``: shuffle with ``SEED + seed_offset`` (independent streams,
    e.g. CycleGAN's two domains); ``dataset``: a dataset of ``items`` of one's own (e.g.
    with masks) instead of :class:`ImageListDataset`."""
    ds = dataset or ImageListDataset(
        items, build_transforms(cfg, True), build_random_erasing(cfg), cfg.INPUT.FORMAT
    )
    return iter(_train_loader(cfg, ds, cfg.SEED + seed_offset, start=start))


def build_group_loader(cfg, dataset, groups, start: int = 0, seed_offset: int = 0):
    """Infinite iterator of batches of a pair ``dataset`` whose ``__getitem__`` takes ``(i, j)``:
    ``i`` shuffled, ``j`` another item of ``i``'s group (:class:`GlobalBatchSampler` with
    ``groups``, e.g. the item indices of each identity), this process's share of each global
    batch of ``SOLVER.IMS_PER_BATCH``, shuffled with ``SEED + seed_offset``, from iteration
    ``start`` on (PN-GAN's source / target-pose pairs)."""
    return iter(_train_loader(cfg, dataset, cfg.SEED + seed_offset, groups, start))


def build_test_sets(cfg, names=None) -> dict[str, dict]:
    """``{label: {'query': loader, 'gallery': loader}}`` for ``DATASETS.TESTS`` (or
    ``names``), entries ``name`` or ``name@root`` (:func:`parse_dataset_entry`; labels:
    :func:`dataset_label`).

    Batches hold ``img`` (test transform), ``pid``, ``camid`` and ``impath``. A
    cross-modality dataset (``sysu_mm01``, ``regdb*``) adds ``modality`` to its batches, reads
    infrared images as one channel, and its entry names its evaluation ``protocol``
    (:mod:`dgnet_plugin.evaluation.cross_modality`); its query and gallery each hold one
    modality, so every batch has one channel count.

    Raises:
        ConfigError: two entries with the same label (e.g. the same folder twice).
    """
    out, entries = {}, {}
    tf = build_transforms(cfg, False)
    for entry in names or cfg.DATASETS.TESTS:
        label = dataset_label(entry, cfg.DATASETS.ROOT)
        if label in entries:
            raise ConfigError(
                f"DATASETS.TESTS entries '{entries[label]}' and '{entry}' would both be reported "
                f"as '{label}'; test each folder once, or give the roots different last folders"
            )
        entries[label] = entry
        ds = open_dataset(*parse_dataset_entry(entry, cfg.DATASETS.ROOT))
        if isinstance(ds, CrossModalityDataset):  # per-item modality: RGB or 1-channel IR
            out[label] = {
                split: _test_loader(
                    ModalityImageDataset(
                        getattr(ds, split), ds.modalities(split), modality_transforms(cfg, False)
                    ),
                    cfg.TEST.IMS_PER_BATCH,
                    cfg.DATALOADER.NUM_WORKERS,
                )
                for split in ("query", "gallery")
            }
            out[label]["protocol"] = ds.protocol
            continue
        out[label] = {
            split: _test_loader(
                ImageListDataset(getattr(ds, split), tf, mode=cfg.INPUT.FORMAT),
                cfg.TEST.IMS_PER_BATCH,
                cfg.DATALOADER.NUM_WORKERS,
            )
            for split in ("query", "gallery")
        }
    return out


def load_cross_modality_train_set(cfg):
    """``(items, modalities, num_pids)`` of ``DATASETS.NAMES``, every entry a
    cross-modality dataset (``sysu_mm01``, ``regdb*``), merged like :func:`load_train_set`.

    Raises:
        ConfigError: an entry is not a cross-modality dataset.
    """
    items, num = load_train_set(cfg)
    mods = []
    for e in cfg.DATASETS.NAMES:
        ds = open_dataset(*parse_dataset_entry(e, cfg.DATASETS.ROOT))
        if not isinstance(ds, CrossModalityDataset):
            raise ConfigError(
                f"DATASETS.NAMES entry '{e}' has no modalities; a cross-modality method trains "
                "on sysu_mm01 or regdb / regdb_trial_<t>"
            )
        mods += ds.modalities("train")
    return items, mods, num


def build_cross_modality_loader(cfg, items, modalities, start: int = 0):
    """Infinite iterator of :func:`collate_by_modality` batches: ``DATALOADER.NUM_IDS``
    identities x (``NUM_INSTANCE`` visible + ``NUM_INSTANCE`` infrared) per step
    (:class:`CrossModalityBatchSampler` seeded with ``SEED``, ``DATALOADER.VI_SAMPLER`` its
    mode; the first ``start`` batches
    skipped, so ``--resume`` continues the same sequence). One process only.

    Raises:
        ConfigError: several processes (not supported by this loader yet), or too few
            identities with both modalities.
    """
    if comm.get_world_size() > 1:
        raise ConfigError("the cross-modality loader runs in one process; drop --num-gpus")
    d = cfg.DATALOADER
    try:
        sampler = CrossModalityBatchSampler(
            [it[1] for it in items],
            modalities,
            d.NUM_IDS,
            d.NUM_INSTANCE,
            cfg.SEED,
            d.VI_SAMPLER,
        )
    except ValueError as e:
        raise ConfigError(f"DATALOADER.NUM_IDS={d.NUM_IDS}: {e}") from None
    ds = ModalityImageDataset(items, modalities, modality_transforms(cfg, True))

    class _Skip(torch.utils.data.Sampler):
        def __iter__(self_inner):
            it = iter(sampler)
            for _ in range(start):
                next(it)
            yield from it

    loader = DataLoader(
        ds,
        batch_sampler=_Skip(),
        num_workers=d.NUM_WORKERS,
        collate_fn=collate_by_modality,
        generator=torch.Generator().manual_seed(cfg.SEED + 104729 * start),
        persistent_workers=d.NUM_WORKERS > 0,
    )
    return iter(loader)
