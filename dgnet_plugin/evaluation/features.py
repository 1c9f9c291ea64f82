"""Test features of a re-ID model (DG-Net section 4 / official ``test_2label.py``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from ..utils import comm
from ..utils.events import progress_bar


def _normalize_parts(feat: torch.Tensor, parts: tuple[int, ...]) -> torch.Tensor:
    return torch.cat([F.normalize(p, dim=1) for p in feat.split(list(parts), dim=1)], dim=1)


@torch.no_grad()
def extract_features(model, loader, device, flip: bool = True, desc: str = "features"):
    """Run ``model`` (eval mode) over ``loader``.

    Each of the model's ``feature_parts`` (DG-Net: 512 primary + 512 fine-grained) is
    L2-normalised; with ``flip`` the features of the image and of its horizontal flip are
    summed and each part normalised again.

    Returns ``(features (N, D) float32 on CPU, pids (N,) int64 ndarray, camids (N,) ndarray)``.
    """
    parts = tuple(getattr(model, "feature_parts", ()))
    feats, pids, camids = [], [], []
    model.eval()
    bar = progress_bar(
        loader, desc=desc, leave=False, dynamic_ncols=True, disable=not comm.is_main_process()
    )
    for batch in bar:
        x = batch["img"].to(device, non_blocking=True)
        f = model(x).float()
        parts = parts or (f.shape[1],)
        f = _normalize_parts(f, parts)
        if flip:
            f = _normalize_parts(f + _normalize_parts(model(x.flip(3)).float(), parts), parts)
        feats.append(f.cpu())
        pids.append(np.asarray(batch["pid"]))
        camids.append(np.asarray(batch["camid"]))
    return torch.cat(feats), np.concatenate(pids), np.concatenate(camids)


@torch.no_grad()
def extract_features_distributed(model, loader, device, flip: bool = True, desc: str = "features"):
    """:func:`extract_features` of the whole ``loader.dataset`` with the work split over the
    processes: each rank runs ``model`` on its contiguous shard (same batch size and workers),
    then the shards are gathered on every rank in rank order, i.e. in the original order of
    the data set. Without a process group it is :func:`extract_features`."""
    if not comm.is_distributed():
        return extract_features(model, loader, device, flip, desc)
    shard = Subset(loader.dataset, comm.shard_range(len(loader.dataset)))
    part = DataLoader(
        shard,
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        collate_fn=loader.collate_fn,
    )
    if len(shard) > 0:
        f, pids, camids = extract_features(model, part, device, flip, desc)
    else:  # more processes than images: still take part in the gathers
        dim = model(next(iter(loader))["img"][:1].to(device)).shape[1]
        f, pids, camids = torch.zeros(0, dim), np.zeros(0, np.int64), np.zeros(0, np.int64)
    f = comm.all_gather_cat(f.contiguous())
    pids = comm.all_gather_cat(torch.as_tensor(pids, dtype=torch.int64)).numpy()
    camids = comm.all_gather_cat(torch.as_tensor(camids, dtype=torch.int64)).numpy()
    return f, pids, camids
