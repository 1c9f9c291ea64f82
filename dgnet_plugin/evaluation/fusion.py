"""Test-time fusion of features over synthesised views (PN-GAN, Qian et al. ECCV 2018,
section 3.3: each test image is rendered in the 8 canonical poses and the 8 features of the
pose-normalised images are fused into one)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: the fusion modes :func:`fuse_features` knows
FUSION_MODES = ("avg", "max")


def fuse_features(feats: torch.Tensor, mode: str = "avg", normalize: bool = True) -> torch.Tensor:
    """Fuse ``feats`` ``(N, P, D)`` (``P`` views of each of ``N`` images) into ``(N, D)``.

    ``avg``: the element-wise mean over the views; ``max``: the element-wise maximum (PN-GAN
    section 3.3, "average and max pooling" of the 8 pose features). Each view's feature is
    L2-normalised first when ``normalize`` (so no view dominates by its norm); the fused
    feature is returned unnormalised (the evaluator normalises it).

    Raises:
        ValueError: ``feats`` is not 3-D or ``mode`` is unknown.
    """
    if feats.ndim != 3:
        raise ValueError(f"features to fuse must be (N, P, D), got {tuple(feats.shape)}")
    if normalize:
        feats = F.normalize(feats, dim=2)
    if mode == "avg":
        return feats.mean(1)
    if mode == "max":
        return feats.amax(1)
    raise ValueError(f"unknown feature fusion '{mode}' ({' | '.join(FUSION_MODES)})")
