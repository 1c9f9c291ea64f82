"""The multi-scale discriminator of MUNIT and DG-Net (DG-Net section 3.1, MUNIT's
``MsImageDis``): a patch discriminator applied at several image scales."""

from __future__ import annotations

import torch
from torch import nn

from ...utils.registry import register_renamed
from ..blocks import Conv2dBlock, ResBlocks, init_weights
from .build import DISCRIMINATOR_REGISTRY


@DISCRIMINATOR_REGISTRY.register()
class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the image and its 2x, 4x ... average-pooled copies.

    Each scale: Conv1x1 (3->d), n_layer x [Conv3x3 s1, Conv3x3 s2] (the last one doubles the
    width), n_res residual blocks, Conv1x1 -> 1. No normalisation, LReLU(0.2), reflect padding,
    N(0, 0.02) init. At 256x128 with the official settings the maps are 64x32, 32x16, 16x8.
    Input: ``(N, in_ch, H, W)`` (DG-Net: ImageNet-normalised RGB); output: list of
    ``(N, 1, h_s, w_s)``.
    """

    def __init__(self, in_ch=3, dim=32, n_layer=2, n_res=4, num_scales=3):
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.scales = nn.ModuleList(
            self._make_net(in_ch, dim, n_layer, n_res) for _ in range(num_scales)
        )
        init_weights(self, "gaussian", 0.02)

    @classmethod
    def from_config(cls, cfg, in_ch: int = 3) -> MultiScaleDiscriminator:
        d = cfg.MODEL.DIS
        return cls(in_ch, d.DIM, d.N_LAYER, d.N_RES, d.NUM_SCALES)

    @staticmethod
    def _make_net(in_ch, dim, n_layer, n_res) -> nn.Sequential:
        layers = [Conv2dBlock(in_ch, dim, 1, 1, 0)]
        ch = dim
        for i in range(n_layer):
            out = 2 * ch if i == n_layer - 1 else ch
            layers += [Conv2dBlock(ch, ch, 3, 1, 1), Conv2dBlock(ch, out, 3, 2, 1)]
            ch = out
        layers += [ResBlocks(n_res, ch, norm="none"), nn.Conv2d(ch, 1, 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, net in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outs.append(net(x))
        return outs


register_renamed(DISCRIMINATOR_REGISTRY, "MultiScalePatchGAN", "MultiScaleDiscriminator")
