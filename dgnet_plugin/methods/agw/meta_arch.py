"""The AGW cross-modality baseline (Ye et al., "Deep Learning for Person Re-identification: A
Survey and Outlook", TPAMI 2021; code mangye16/Cross-Modal-Re-ID-baseline): a two-stream
network with modality-specific stems and shared stages, non-local blocks, GeM pooling and a
BNNeck."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...config import ConfigError
from ...modeling.backbones import build_backbone
from ...modeling.backbones.build import adapt_first_conv
from ...modeling.blocks import NonLocalBlock
from ...modeling.heads import build_head, global_pool
from ...modeling.meta_arch import META_ARCH_REGISTRY


def split_two_stream(backbone, non_local: bool):
    """``(visible stem, infrared stem, shared body)`` of a ResNet-50 or MobileNetV2 backbone.

    ResNet-50 [AGW]: stem = conv1, bn1, relu, maxpool; body = layer1-4, with 2 non-local
    blocks after layer2 and 3 after layer3 ([ours] after the stage: AGW puts them between the
    stage's last blocks). MobileNetV2 [ours, for CPU runs]: stem = ``features[0:2]``, body =
    the rest, non-local blocks after ``features[6]`` (2) and ``features[13]`` (3). The infrared
    stem is a copy whose first convolution reads one channel (the mean of the RGB filters; AGW
    reads infrared as 3 channels).

    Raises:
        ConfigError: another backbone.
    """
    name = type(backbone).__name__

    def nl(ch, n):
        return [NonLocalBlock(ch) for _ in range(n)] if non_local else []

    if name == "ResNet50Backbone":
        stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
        body = nn.Sequential(
            backbone.layer1,
            backbone.layer2,
            *nl(512, 2),
            backbone.layer3,
            *nl(1024, 3),
            backbone.layer4,
        )
    elif name == "MobileNetV2Backbone":
        f = backbone.features
        stem = nn.Sequential(*f[:2])
        body = nn.Sequential(*f[2:7], *nl(32, 2), *f[7:14], *nl(96, 3), *f[14:])
    else:
        raise ConfigError(f"AGW's two-stream split supports resnet50 and mobilenetv2, not {name}")
    ir_stem = copy.deepcopy(stem)
    ir_stem[0] = (
        adapt_first_conv(ir_stem[0], 1)
        if isinstance(ir_stem[0], nn.Conv2d)
        else _adapt_block(ir_stem[0])
    )
    return stem, ir_stem, body


def _adapt_block(block: nn.Module) -> nn.Module:
    block[0] = adapt_first_conv(block[0], 1)  # MobileNetV2's Conv-BN-ReLU6
    return block


@META_ARCH_REGISTRY.register()
class AGW(nn.Module):
    """``stem_v`` (visible, ``(N, 3, H, W)``) and ``stem_i`` (infrared, ``(N, 1, H, W)``),
    the shared ``body``, GeM pooling, a BNNeck head.

    ``forward(x)`` picks the stem by the channel count; training: ``{logits, pool}``
    (``pool`` = the GeM feature before the BN, for the metric loss); eval: the test feature
    (``MODEL.AGW.TEST_FEATURE``: bn | pool). ``forward_pair(x_v, x_i)`` runs both stems and one
    body pass on the concatenation (AGW's training forward).
    """

    PROVIDES = ("reid",)

    def __init__(
        self,
        backbone,
        num_classes: int,
        pool="gem",
        head="BNNeckHead",
        non_local=True,
        test_feature="bn",
    ):
        super().__init__()
        if test_feature not in ("bn", "pool"):
            raise ConfigError(f"MODEL.AGW.TEST_FEATURE '{test_feature}': bn | pool")
        self.stem_v, self.stem_i, self.body = split_two_stream(backbone, non_local)
        self.pool = pool
        self.head = build_head(head, backbone.out_channels, num_classes, 0, 0.0)
        self.test_feature = test_feature
        self.feature_parts = (backbone.out_channels,)

    @property
    def reid(self) -> nn.Module:
        return self

    @classmethod
    def from_config(cls, cfg, num_classes: int) -> AGW:
        if cfg.MODEL.BACKBONE.IN_CHANNELS != 3:
            raise ConfigError(
                "AGW: MODEL.BACKBONE.IN_CHANNELS must be 3 (the infrared stem is derived)"
            )
        a, h = cfg.MODEL.AGW, cfg.MODEL.HEADS
        return cls(build_backbone(cfg), num_classes, h.POOL, h.NAME, a.NON_LOCAL, a.TEST_FEATURE)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            return self.stem_v(x)
        if x.shape[1] == 1:
            return self.stem_i(x)
        raise ValueError(
            f"AGW reads 3-channel visible or 1-channel infrared images, got {x.shape[1]}"
        )

    def _heads(self, fmap: torch.Tensor):
        f = global_pool(fmap, self.pool)
        logits, f_bn = self.head(f)
        if self.training:
            return {"logits": logits, "pool": f}
        return f_bn if self.test_feature == "bn" else f

    def forward(self, x: torch.Tensor):
        return self._heads(self.body(self._stem(x)))

    def forward_pair(self, x_v: torch.Tensor, x_i: torch.Tensor):
        return self._heads(self.body(torch.cat([self.stem_v(x_v), self.stem_i(x_i)])))
