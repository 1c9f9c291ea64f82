"""The AGW cross-modality baseline (Ye et al., "Deep Learning for Person Re-identification: A
Survey and Outlook", TPAMI 2021; code mangye16/Cross-Modal-Re-ID-baseline): a two-stream
network with modality-specific stems and shared stages, non-local blocks, GeM pooling and a
BNNeck."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...config import ConfigError
from ...data.transforms import channel_stats
from ...losses import id_loss, weighted_regularized_triplet_loss
from ...modeling.backbones import build_backbone
from ...modeling.backbones.build import adapt_first_conv
from ...modeling.blocks import NonLocalBlock, renormalize
from ...modeling.heads import build_head, global_pool
from ...modeling.meta_arch import META_ARCH_REGISTRY

NON_LOCAL_POSITIONS = ("interleaved", "after_stage")
BN_GAMMA_INITS = ("normal", "ones")
IR_INPUTS = ("rgb3", "gray1")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _with_non_local(blocks, make, n: int, position: str) -> list:
    """``blocks`` (a stage's modules) with ``n`` non-local blocks ``make()``: each right after
    one of the stage's last ``n`` blocks (``"interleaved"``, AGW's ``NL_k_idx``) or all after
    the stage (``"after_stage"``)."""
    blocks = list(blocks)
    if n == 0:
        return blocks
    if position == "after_stage":
        return blocks + [make() for _ in range(n)]
    out = []
    for i, b in enumerate(blocks):
        out.append(b)
        if i >= len(blocks) - n:
            out.append(make())
    return out


def split_two_stream(
    backbone,
    non_local: bool,
    inter: int = 1,
    affinity: str = "dot_over_n",
    position: str = "interleaved",
    ir_channels: int = 1,
):
    """``(visible stem, infrared stem, shared body)`` of a ResNet-50 or MobileNetV2 backbone.

    ResNet-50 [AGW]: stem = conv1, bn1, relu, maxpool; body = layer1-4, with 2 non-local
    blocks in layer2 and 3 in layer3 (:class:`~dgnet_plugin.modeling.blocks.NonLocalBlock`
    with ``inter`` channels and ``affinity``). ``position`` ``"interleaved"`` [AGW]: one after
    each of layer2's last 2 Bottlenecks and layer3's last 3 (``model.py`` ``NL_2_idx`` = [2,
    3], ``NL_3_idx`` = [3, 4, 5]); ``"after_stage"``: all after their stage. MobileNetV2
    [ours, for CPU runs]: stem = ``features[0:2]``, body = the rest, with the same rule on the
    32-channel stage ``features[4:7]`` (2) and the 96-channel stage ``features[11:14]`` (3).
    The infrared stem is a copy of the visible one (both start from the same ImageNet weights,
    as AGW's two ``resnet50(pretrained=True)``); with ``ir_channels=1`` its first convolution
    reads one channel (the mean of the RGB filters), with 3 it is kept (AGW reads infrared as a
    3-channel image).

    Raises:
        ConfigError: another backbone or ``position``.
    """
    name = type(backbone).__name__
    if position not in NON_LOCAL_POSITIONS:
        raise ConfigError(
            f"MODEL.AGW.NON_LOCAL_POSITION '{position}': {' | '.join(NON_LOCAL_POSITIONS)}"
        )

    def stage(blocks, ch, n):
        make = lambda: NonLocalBlock(ch, inter, affinity)  # noqa: E731
        return _with_non_local(blocks, make, n if non_local else 0, position)

    if name == "ResNet50Backbone":
        stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
        if non_local and position == "interleaved":
            l2 = nn.Sequential(*stage(backbone.layer2, 512, 2))
            l3 = nn.Sequential(*stage(backbone.layer3, 1024, 3))
            body = nn.Sequential(backbone.layer1, l2, l3, backbone.layer4)
        else:
            body = nn.Sequential(
                backbone.layer1,
                *stage([backbone.layer2], 512, 2),
                *stage([backbone.layer3], 1024, 3),
                backbone.layer4,
            )
    elif name == "MobileNetV2Backbone":
        f = backbone.features
        stem = nn.Sequential(*f[:2])
        body = nn.Sequential(
            *f[2:4], *stage(f[4:7], 32, 2), *f[7:11], *stage(f[11:14], 96, 3), *f[14:]
        )
    else:
        raise ConfigError(f"AGW's two-stream split supports resnet50 and mobilenetv2, not {name}")
    ir_stem = copy.deepcopy(stem)
    if ir_channels == 3:
        return stem, ir_stem, body
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
    the shared ``body``, GeM pooling, a BNNeck head (its BatchNorm1d scale drawn from N(1,
    0.01) with ``bn_gamma_init="normal"`` [AGW], or 1).

    ``ir_input`` (``MODEL.AGW.IR_INPUT``): ``"rgb3"`` [AGW, which reads the SYSU-MM01 infrared
    images as 3-channel RGB]: the loaders' 1-channel infrared batch (normalised with ``stats[1]``)
    is repeated to 3 channels and normalised per channel as RGB (``stats[3]``), then goes
    through an unchanged copy of the visible stem; ``"gray1"``: the stem's first convolution
    reads the one channel (the mean of the RGB filters). ``stats``: ``{channels: (mean, std)}``
    of the loaders (default ImageNet).

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
        non_local_inter=1,
        non_local_affinity="dot_over_n",
        non_local_position="interleaved",
        bn_gamma_init="normal",
        ir_input="rgb3",
        stats=None,
    ):
        super().__init__()
        if ir_input not in IR_INPUTS:
            raise ConfigError(f"MODEL.AGW.IR_INPUT '{ir_input}': {' | '.join(IR_INPUTS)}")
        if test_feature not in ("bn", "pool"):
            raise ConfigError(f"MODEL.AGW.TEST_FEATURE '{test_feature}': bn | pool")
        if bn_gamma_init not in BN_GAMMA_INITS:
            raise ConfigError(
                f"MODEL.AGW.BN_GAMMA_INIT '{bn_gamma_init}': {' | '.join(BN_GAMMA_INITS)}"
            )
        ir_channels = 3 if ir_input == "rgb3" else 1
        self.stem_v, self.stem_i, self.body = split_two_stream(
            backbone,
            non_local,
            non_local_inter,
            non_local_affinity,
            non_local_position,
            ir_channels,
        )
        self.ir_input = ir_input
        self.stats = stats or {
            c: (channel_stats(IMAGENET_MEAN, c), channel_stats(IMAGENET_STD, c)) for c in (1, 3)
        }
        self.pool = pool
        self.head = build_head(head, backbone.out_channels, num_classes, 0, 0.0)
        if bn_gamma_init == "normal":  # [AGW] model.py weights_init_kaiming: N(1, 0.01)
            for m in self.head.modules():
                if isinstance(m, nn.BatchNorm1d):
                    nn.init.normal_(m.weight, 1.0, 0.01)
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
        return cls(
            build_backbone(cfg),
            num_classes,
            h.POOL,
            h.NAME,
            a.NON_LOCAL,
            a.TEST_FEATURE,
            a.NON_LOCAL_INTER,
            a.NON_LOCAL_AFFINITY,
            a.NON_LOCAL_POSITION,
            a.BN_GAMMA_INIT,
            a.IR_INPUT,
            {
                c: (
                    channel_stats(cfg.INPUT.PIXEL_MEAN, c, "INPUT.PIXEL_MEAN"),
                    channel_stats(cfg.INPUT.PIXEL_STD, c, "INPUT.PIXEL_STD"),
                )
                for c in (1, 3)
            },
        )

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            return self.stem_v(x)
        if x.shape[1] == 1:
            return self.stem_i(self._infrared(x))
        raise ValueError(
            f"AGW reads 3-channel visible or 1-channel infrared images, got {x.shape[1]}"
        )

    def _infrared(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` -> the infrared stem's input: unchanged (``gray1``), or the grey
        image as 3 RGB channels in the RGB normalisation (``rgb3``)."""
        if self.ir_input == "gray1":
            return x
        (m1, s1), (m3, s3) = self.stats[1], self.stats[3]
        return renormalize(x.expand(-1, 3, -1, -1), m1, s1, m3, s3)

    def _heads(self, fmap: torch.Tensor):
        f = global_pool(fmap, self.pool)
        logits, f_bn = self.head(f)
        if self.training:
            return {"logits": logits, "pool": f}
        return f_bn if self.test_feature == "bn" else f

    def forward(self, x: torch.Tensor):
        return self._heads(self.body(self._stem(x)))

    def losses(self, out: dict, pids: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms of AGW's step from :meth:`forward_pair`'s ``out``: identity
        CE on the BNNeck logits and the weighted regularisation triplet on the pooled
        features (AGW ``train.py``: ``loss = loss_id + loss_tri``), ``pids`` ``(2N,)``
        visible then infrared."""
        return {
            "id": id_loss(out["logits"], pids),
            "wrt": weighted_regularized_triplet_loss(out["pool"], pids),
        }

    def forward_pair(self, x_v: torch.Tensor, x_i: torch.Tensor):
        x_i = self.stem_i(self._infrared(x_i))
        return self._heads(self.body(torch.cat([self.stem_v(x_v), x_i])))
