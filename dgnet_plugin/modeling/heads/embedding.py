"""``EmbeddingHead``: the bottleneck + classifier head of DG-Net's Ea and of the IDE baseline
(``ClassBlock`` in the official code), and the global pooling before it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.registry import register_renamed
from .build import HEAD_REGISTRY


def global_pool(fmap: torch.Tensor, kind: str) -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, C)`` by global ``"max"`` or ``"avg"`` pooling
    (``MODEL.HEADS.POOL``). Raises ``ValueError`` for another ``kind``."""
    if kind == "max":
        return F.adaptive_max_pool2d(fmap, 1).flatten(1)
    if kind == "avg":
        return F.adaptive_avg_pool2d(fmap, 1).flatten(1)
    raise ValueError(f"MODEL.HEADS.POOL must be 'max' or 'avg', got '{kind}'")


@HEAD_REGISTRY.register()
class EmbeddingHead(nn.Module):
    """Linear(in -> embed) -> BatchNorm1d -> Dropout -> Linear(embed -> classes).

    The embedding is taken after the batch norm (before dropout), as in DG-Net's evaluation
    (``../shared/reference/dgnet.md`` section 4). Init: kaiming (fan-out) for the bottleneck,
    N(1, 0.02) for the BN scale, N(0, 0.001) for the classifier, zero biases.
    """

    def __init__(self, in_dim: int, num_classes: int, embed_dim: int = 512, dropout: float = 0.5):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"a classifier head needs num_classes >= 1, got {num_classes}")
        self.bottleneck = nn.Sequential(nn.Linear(in_dim, embed_dim), nn.BatchNorm1d(embed_dim))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_classes)
        nn.init.kaiming_normal_(self.bottleneck[0].weight, a=0, mode="fan_out")
        nn.init.zeros_(self.bottleneck[0].bias)
        nn.init.normal_(self.bottleneck[1].weight, 1.0, 0.02)
        nn.init.zeros_(self.bottleneck[1].bias)
        nn.init.normal_(self.classifier.weight, 0.0, 0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.bottleneck(x)
        return self.classifier(self.dropout(emb)), emb


register_renamed(HEAD_REGISTRY, "ClassBlock", "EmbeddingHead")
