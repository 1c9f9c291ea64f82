"""PN-GAN's test-time features (Qian et al., ECCV 2018, section 3.3): every test image is
re-rendered in the canonical poses by the generator, and the re-ID features of the
pose-normalised images are fused (average or max) beside the feature of the image itself."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ...evaluation import (
    evaluate_features,
    extract_features_distributed,
    fuse_features,
)
from ...utils import comm

logger = logging.getLogger("dgnet_plugin")


def renormalize(x: torch.Tensor, mean_from, std_from, mean_to, std_to) -> torch.Tensor:
    """``(N, C, H, W)`` normalised with ``(mean_from, std_from)`` -> normalised with
    ``(mean_to, std_to)`` (e.g. ImageNet statistics <-> ``[-1, 1]``: mean = std = 0.5)."""

    def t(v):
        return torch.as_tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)

    return ((x * t(std_from) + t(mean_from)) - t(mean_to)) / t(std_to)


class PoseViewsReID(nn.Module):
    """The re-ID network seen through the pose-normalising generator.

    ``forward(x)`` with ``x`` a test batch ``(N, 3, H, W)`` (``reid_stats`` normalisation,
    ImageNet's) returns ``(N, (1 + P) * D)``: the feature of ``x``, then the features of its
    ``P`` pose-normalised copies ``G([x'; pose_k])`` (``x'`` is ``x`` resized to the
    generator's size and renormalised to ``gan_stats``; the output is resized back and
    renormalised to ``reid_stats``). ``feature_parts`` = ``(D,) * (1 + P)``, so the evaluator
    L2-normalises each view. Split it with :func:`split_views`.
    """

    def __init__(self, reid, gen, pose_maps: torch.Tensor, gan_stats, reid_stats):
        super().__init__()
        self.reid, self.gen = reid, gen
        self.register_buffer("pose_maps", pose_maps.float(), persistent=False)
        self.gan_stats, self.reid_stats = gan_stats, reid_stats
        dim = int(getattr(reid, "feature_parts", (0,))[0]) or None
        self.dim = dim
        self.feature_parts = (dim,) * (1 + pose_maps.shape[0]) if dim else ()

    @property
    def num_poses(self) -> int:
        return int(self.pose_maps.shape[0])

    def pose_normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(P, N, 3, H, W)``: ``x`` in each canonical pose, in the re-ID
        normalisation and size."""
        n, size = x.shape[0], x.shape[-2:]
        gan_size = self.pose_maps.shape[-2:]
        g = renormalize(x, *self.reid_stats, *self.gan_stats)
        g = F.interpolate(g, size=gan_size, mode="bilinear", align_corners=False)
        out = []
        for pose in self.pose_maps:
            y = self.gen(torch.cat([g, pose.expand(n, -1, -1, -1)], dim=1))
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out.append(renormalize(y.clamp(-1, 1), *self.gan_stats, *self.reid_stats))
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = self.pose_normalise(x)
        feats = [self.reid(x)] + [self.reid(v) for v in views]
        return torch.cat(feats, dim=1)


def split_views(feats: torch.Tensor, num_poses: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, (1 + P) * D)`` of :class:`PoseViewsReID` -> ``(original (N, D), poses (N, P, D))``."""
    n = feats.shape[0]
    views = feats.view(n, 1 + num_poses, -1)
    return views[:, 0], views[:, 1:]


def view_features(
    original: torch.Tensor, poses: torch.Tensor, name: str, renormalize: bool = True
) -> torch.Tensor:
    """The test feature called ``name``: ``original`` (the image only), ``avg`` / ``max``
    (the fused pose-normalised features, :func:`fuse_features`), ``concat`` (the ``P``
    L2-normalised view features side by side, ``(N, P * D)``), ``original+avg`` /
    ``original+max`` (both, concatenated; each half L2-normalised: PN-GAN's final feature
    combines the original-image branch and the pose-normalised branch).

    ``renormalize`` False (``PNGAN.FUSED_L2``): ``avg`` / ``max`` / ``concat`` as fused from
    the L2-normalised views, not normalised again (the released ``script/viper_feature.py``
    ``Calculate_distmat``: squared Euclidean distances of the mean, max and concatenation of
    the normalised views).

    Raises:
        ValueError: an unknown name.
    """
    if name == "original":
        return original
    base, _, mode = name.rpartition("+")
    if base and base != "original":
        raise ValueError(f"unknown PN-GAN test feature '{name}'")
    if mode == "concat":
        fused = F.normalize(poses, dim=2).reshape(poses.shape[0], -1)
    else:
        fused = fuse_features(poses, mode)
    if renormalize or base:
        fused = F.normalize(fused, dim=1)
    if not base:
        return fused
    return torch.cat([F.normalize(original, dim=1), fused], dim=1)


@torch.no_grad()
def evaluate_pose_fusion(
    model: PoseViewsReID, test_sets, device, test_cfg, names, renormalize: bool = True
) -> dict:
    """``{feature name: {dataset: metrics (%)}}`` for each test feature of ``names``
    (:func:`view_features`) from one extraction of all views per image (the fusion modes
    cost nothing extra; ``renormalize``: see :func:`view_features`). Single-query ranking
    (:func:`evaluate_features`, ``TEST.METRIC``, ``TEST.FLIP``); re-ranking, multi-query and
    ranked lists are not applied here."""
    t = test_cfg
    out: dict[str, dict] = {n: {} for n in names}
    for ds, loaders in test_sets.items():
        qf, q_pids, q_camids = extract_features_distributed(
            model, loaders["query"], device, t.FLIP, f"{ds} query (pose views)"
        )
        gf, g_pids, g_camids = extract_features_distributed(
            model, loaders["gallery"], device, t.FLIP, f"{ds} gallery (pose views)"
        )
        if not comm.is_main_process():
            continue
        q, g = split_views(qf, model.num_poses), split_views(gf, model.num_poses)
        for name in names:
            m = evaluate_features(
                view_features(*q, name, renormalize).to(device),
                view_features(*g, name, renormalize).to(device),
                q_pids,
                g_pids,
                q_camids,
                g_camids,
                metric=t.METRIC,
                memory_mb=t.MEMORY_MB,
            )
            out[name][ds] = {k: 100.0 * v for k, v in m.items() if k != "num_valid_queries"}
    return comm.broadcast_object(out)
