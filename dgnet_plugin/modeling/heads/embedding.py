"""``EmbeddingHead``: the bottleneck + classifier head of DG-Net's Ea and of the IDE baseline
(``ClassBlock`` in the official code), and the global pooling before it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.registry import register_renamed
from .build import HEAD_REGISTRY


def gem_pool(fmap: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling (Radenovic et al., TPAMI 2019, Eq. 3): ``(N, C, h, w) -> (N,
    C)``, ``f_c = (mean_hw x_c^p)^(1/p)`` on ``x`` clamped to ``>= eps``; ``p = 3`` as AGW."""
    return F.adaptive_avg_pool2d(fmap.clamp(min=eps).pow(p), 1).flatten(1).pow(1.0 / p)


def global_pool(fmap: torch.Tensor, kind: str) -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, C)`` by global ``"max"``, ``"avg"`` or ``"gem"`` (p = 3,
    :func:`gem_pool`) pooling (``MODEL.HEADS.POOL``). Raises ``ValueError`` for another
    ``kind``."""
    if kind == "gem":
        return gem_pool(fmap)
    if kind == "max":
        return F.adaptive_max_pool2d(fmap, 1).flatten(1)
    if kind == "avg":
        return F.adaptive_avg_pool2d(fmap, 1).flatten(1)
    raise ValueError(f"MODEL.HEADS.POOL must be 'max', 'avg' or 'gem', got '{kind}'")


@HEAD_REGISTRY.register()
class EmbeddingHead(nn.Module):
    """Linear(in -> embed) -> BatchNorm1d [-> ReLU] -> Dropout -> Linear(embed -> classes).

    The embedding is taken after the batch norm (before the ReLU and dropout), as in DG-Net's
    evaluation (``../shared/reference/dgnet.md`` section 4). Init: kaiming (fan-out) for the
    bottleneck, N(1, 0.02) for the BN scale, N(0, 0.001) for the classifier, zero biases.

    ``embed_dim = 0`` (``MODEL.HEADS.EMBEDDING_DIM 0``): no bottleneck, the pooled feature goes
    through dropout straight to the classifier (LSRO's ``pool5 -> dropout -> fc``, layumi/
    Person-reID_GAN ``resnet52_market_gan.m``); the returned embedding is then the input.
    ``neck_relu`` (``MODEL.HEADS.NECK_RELU``): a ReLU between the BN and the dropout, as in
    CamStyle's head (zhunzhong07/CamStyle ``reid/models/resnet.py``, ``ResNet.forward``).

    ``bn_init`` ``"ones"``: the BN scale starts at 1 (CamStyle, ``init.constant(feat_bn.weight,
    1)``) instead of N(1, 0.02).

    ``forward(x)``: ``x`` ``(N, in_dim)`` -> ``(logits (N, num_classes), emb (N, embed_dim or
    in_dim))``. Raises ``ValueError`` for ``num_classes < 1``, ``embed_dim < 0`` or another
    ``bn_init``.
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        embed_dim: int = 512,
        dropout: float = 0.5,
        neck_relu: bool = False,
        bn_init: str = "normal",
    ):
        super().__init__()
        if bn_init not in ("normal", "ones"):
            raise ValueError(f"MODEL.HEADS.BN_INIT '{bn_init}': choose normal or ones")
        if num_classes < 1:
            raise ValueError(f"a classifier head needs num_classes >= 1, got {num_classes}")
        if embed_dim < 0:
            raise ValueError(
                f"MODEL.HEADS.EMBEDDING_DIM must be >= 0 (0 = no bottleneck), got {embed_dim}"
            )
        self.bottleneck = nn.Identity()
        if embed_dim > 0:
            self.bottleneck = nn.Sequential(nn.Linear(in_dim, embed_dim), nn.BatchNorm1d(embed_dim))
        self.neck_act = nn.ReLU() if neck_relu else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim or in_dim, num_classes)
        # initialised after every layer is built: the random stream of a seeded run is that
        # of the head before EMBEDDING_DIM 0 existed
        if embed_dim > 0:
            nn.init.kaiming_normal_(self.bottleneck[0].weight, a=0, mode="fan_out")
            nn.init.zeros_(self.bottleneck[0].bias)
            if bn_init == "normal":
                nn.init.normal_(self.bottleneck[1].weight, 1.0, 0.02)
            else:  # CamStyle's reid/models/resnet.py: init.constant(feat_bn.weight, 1)
                nn.init.ones_(self.bottleneck[1].weight)
            nn.init.zeros_(self.bottleneck[1].bias)
        nn.init.normal_(self.classifier.weight, 0.0, 0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.bottleneck(x)
        return self.classifier(self.dropout(self.neck_act(emb))), emb


register_renamed(HEAD_REGISTRY, "ClassBlock", "EmbeddingHead")


@HEAD_REGISTRY.register()
class BNNeckHead(nn.Module):
    """BNNeck (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-ID",
    CVPRW 2019): pooled feature ``f`` ``(N, in_dim)`` -> batch norm without bias -> bias-free
    linear classifier. ``forward(f)`` returns ``(logits (N, num_classes), f_bn (N, in_dim))``;
    the metric loss takes ``f`` (before the BN), the identity loss the logits (AGW).
    ``embed_dim`` and ``dropout`` are not used (the registry's signature)."""

    def __init__(self, in_dim: int, num_classes: int, embed_dim: int = 0, dropout: float = 0.0):
        super().__init__()
        self.bottleneck = nn.BatchNorm1d(in_dim)
        self.bottleneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_dim, max(num_classes, 1), bias=False)
        nn.init.ones_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f_bn = self.bottleneck(f)
        return self.classifier(f_bn), f_bn
