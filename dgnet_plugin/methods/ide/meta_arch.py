"""The IDE baseline (``ft_net`` of Person_reID_baseline_pytorch): the plain softmax re-ID
model, and the teacher DG-Net distils from."""

from __future__ import annotations

import torch
from torch import nn

from ...modeling.backbones import build_backbone
from ...modeling.heads import build_head, global_pool
from ...modeling.meta_arch import META_ARCH_REGISTRY


@META_ARCH_REGISTRY.register()
class IDEBaseline(nn.Module):
    """Backbone, global pooling, one embedding head. Input: ImageNet-normalised
    ``(N, 3, H, W)``. Eval ``forward`` returns the ``(N, embed_dim)`` embedding; training
    returns logits ``(N, num_classes)``; ``return_all`` the dict ``{logits: (logits,), emb:
    (emb,)}``.
    """

    PROVIDES = ("reid",)

    def __init__(
        self, backbone, num_classes, embed_dim=512, pool="avg", dropout=0.5, head="EmbeddingHead"
    ):
        super().__init__()
        self.backbone = backbone
        self.pool = pool
        self.num_classes = num_classes
        self.classifier = build_head(head, backbone.out_channels, num_classes, embed_dim, dropout)
        self.feature_parts = (embed_dim,)

    @property
    def reid(self) -> nn.Module:
        return self

    @classmethod
    def from_config(cls, cfg, num_classes: int) -> IDEBaseline:
        h = cfg.MODEL.HEADS
        return cls(build_backbone(cfg), num_classes, h.EMBED_DIM, h.POOL, h.DROPOUT, h.NAME)

    def forward(self, x: torch.Tensor, return_all: bool = False):
        logits, emb = self.classifier(global_pool(self.backbone(x), self.pool))
        if return_all:
            return {"logits": (logits,), "emb": (emb,)}
        return logits if self.training else emb
