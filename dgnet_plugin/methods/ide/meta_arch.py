"""The IDE baseline (``ft_net`` of Person_reID_baseline_pytorch): the plain softmax re-ID
model, and the teacher DG-Net distils from."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...losses import id_loss
from ...modeling.backbones import build_backbone
from ...modeling.heads import build_head, global_pool
from ...modeling.meta_arch import META_ARCH_REGISTRY


@META_ARCH_REGISTRY.register()
class IDEBaseline(nn.Module):
    """Backbone, global pooling, one embedding head. Input: ImageNet-normalised
    ``(N, 3, H, W)``. Eval ``forward`` returns the test feature (``MODEL.HEADS.TEST_FEATURE``):
    the ``(N, embed_dim)`` embedding ("embed") or the ``(N, C)`` pooled backbone feature
    ("pool", e.g. ResNet-50's 2048-d pool5); training returns logits ``(N, num_classes)``;
    ``return_all`` the dict ``{logits: (logits,), emb: (emb,)}``. ``bn_init``
    (``MODEL.HEADS.BN_INIT``, where the config has it): the bottleneck BN's scale init,
    ``normal`` N(1, 0.02) or ``ones`` (CamStyle). Raises ``ConfigError`` for another
    ``test_feature``.
    """

    TEST_FEATURES = ("embed", "pool")

    PROVIDES = ("reid",)

    def __init__(
        self,
        backbone,
        num_classes,
        embed_dim=512,
        pool="avg",
        dropout=0.5,
        head="EmbeddingHead",
        neck_relu=False,
        test_feature="embed",
        bn_init="normal",
        label_smooth=0.0,
    ):
        super().__init__()
        self.label_smooth = label_smooth
        if test_feature not in self.TEST_FEATURES:
            raise ConfigError(
                f"MODEL.HEADS.TEST_FEATURE '{test_feature}': use one of {self.TEST_FEATURES}"
            )
        self.backbone = backbone
        self.pool = pool
        self.num_classes = num_classes
        options = {"neck_relu": True} if neck_relu else {}
        if bn_init != "normal":
            options["bn_init"] = bn_init
        self.classifier = build_head(
            head, backbone.out_channels, num_classes, embed_dim, dropout, **options
        )
        self.test_feature = test_feature
        pooled = test_feature == "pool" or embed_dim == 0
        self.feature_parts = (backbone.out_channels if pooled else embed_dim,)

    @property
    def reid(self) -> nn.Module:
        return self

    @classmethod
    def from_config(cls, cfg, num_classes: int) -> IDEBaseline:
        h = cfg.MODEL.HEADS
        return cls(
            build_backbone(cfg),
            num_classes,
            h.EMBEDDING_DIM,
            h.POOL,
            h.DROPOUT,
            h.NAME,
            h.NECK_RELU,
            h.TEST_FEATURE,
            h.get("BN_INIT", "normal"),
            cfg.LOSS.get("LABEL_SMOOTH", 0.0),
        )

    def losses(self, logits: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """The unweighted term of the IDE step: ``{"id": CE(logits, pid)}`` (label smoothing
        ``LOSS.LABEL_SMOOTH``), from the training logits ``(N, num_classes)``."""
        return {"id": id_loss(logits, batch["pid"], self.label_smooth)}

    def forward(self, x: torch.Tensor, return_all: bool = False):
        pooled = global_pool(self.backbone(x), self.pool)
        logits, emb = self.classifier(pooled)
        if return_all:
            return {"logits": (logits,), "emb": (emb,)}
        if self.training:
            return logits
        return pooled if self.test_feature == "pool" else emb
