"""UNIT's multi-scale discriminator (mingyuliutw/UNIT ``networks.py`` ``MsImageDis``), the
discriminator of D2RL's full recipes (D2RL follows UNIT for its image-level sub-network)."""

from __future__ import annotations

import torch
from torch import nn

from ...modeling.blocks import Conv2dBlock, init_weights
from ...modeling.discriminators import DISCRIMINATOR_REGISTRY


@DISCRIMINATOR_REGISTRY.register()
class UNITDiscriminator(nn.Module):
    """``num_scales`` patch discriminators on the image and its average-pooled copies
    (``AvgPool2d(3, 2, 1, count_include_pad=False)`` between scales).

    Each scale (UNIT ``MsImageDis._make_net``): Conv4x4 stride 2 (``in_ch -> dim``), then
    ``n_layer - 1`` x Conv4x4 stride 2 doubling the width, each with LReLU(0.2), no
    normalisation, reflect padding; then Conv1x1 -> 1. N(0, 0.02) init (UNIT ``trainer.py``:
    ``dis.apply(weights_init('gaussian'))``). Input ``(N, in_ch, H, W)`` in ``[-1, 1]``;
    output: a list of ``(N, 1, H / 2^n_layer / 2^s, ...)`` maps, one per scale ``s``.
    UNIT's configuration: dim 64, n_layer 4, 3 scales.
    """

    def __init__(self, in_ch: int = 3, dim: int = 64, n_layer: int = 4, num_scales: int = 3):
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.scales = nn.ModuleList(self._make_net(in_ch, dim, n_layer) for _ in range(num_scales))
        init_weights(self, "gaussian", 0.02)

    @classmethod
    def from_config(cls, cfg, in_channels: int = 3) -> UNITDiscriminator:
        d = cfg.MODEL.DIS
        return cls(in_channels, d.DIM, d.N_LAYER, d.NUM_SCALES)

    @staticmethod
    def _make_net(in_ch: int, dim: int, n_layer: int) -> nn.Sequential:
        layers = [Conv2dBlock(in_ch, dim, 4, 2, 1, norm="none", activation="lrelu")]
        for _ in range(n_layer - 1):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm="none", activation="lrelu"))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for net in self.scales:
            outs.append(net(x))
            x = self.downsample(x)
        return outs
