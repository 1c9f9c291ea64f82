"""PN-GAN's released patch discriminator (Qian et al., ECCV 2018; ``naiq/PN_GAN``
``script/GAN/network.py`` ``Patch_Discriminator``, the one ``script/GAN/train.py`` trains)."""

from __future__ import annotations

import torch
from torch import nn

from .build import DISCRIMINATOR_REGISTRY


@DISCRIMINATOR_REGISTRY.register()
class PNGANPatchDiscriminator(nn.Module):
    """Image ``(N, in_ch, H, W)`` in ``[-1, 1]`` -> ``[scores (N, 1, H/8 - 6, W/8 - 6)]`` (a
    list of one map, the registry's contract; 26x10 at 256x128), raw scores for LSGAN.

    Layers of the release: a 4x4 stride-2 conv (padding 1, no bias) to ``dim``, LeakyReLU(0.2);
    two 4x4 stride-2 convs (padding 1) to ``2 dim`` and ``4 dim``, instance norm (no affine),
    LeakyReLU(0.2); a 4x4 stride-1 conv **without padding** to ``8 dim``, instance norm,
    LeakyReLU(0.2); a 4x4 stride-1 conv without padding and bias to 1 score per patch
    (70x70 receptive field). PyTorch's default layer initialisation (the released training
    calls no init).

    Raises:
        ValueError: (in ``forward``) an image smaller than 56 x 56 pixels leaves no score.
    """

    def __init__(self, in_ch: int = 3, dim: int = 64):
        super().__init__()

        def block(cin, cout, stride, pad, norm=True, bias=True):
            layers = [nn.Conv2d(cin, cout, 4, stride, pad, bias=bias)]
            if norm:
                layers.append(nn.InstanceNorm2d(cout))
            return [*layers, nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            *block(in_ch, dim, 2, 1, norm=False, bias=False),
            *block(dim, dim * 2, 2, 1),
            *block(dim * 2, dim * 4, 2, 1),
            *block(dim * 4, dim * 8, 1, 0),
            nn.Conv2d(dim * 8, 1, 4, 1, 0, bias=False),
        )

    @classmethod
    def from_config(cls, cfg, in_ch: int = 3) -> PNGANPatchDiscriminator:
        """From ``MODEL.DIS.DIM`` (the release's ``ndf`` 64)."""
        return cls(in_ch, cfg.MODEL.DIS.DIM)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < 56:
            raise ValueError(
                f"PNGANPatchDiscriminator needs images of at least 56x56 pixels (two unpadded "
                f"4x4 convs after three stride-2 ones), got {tuple(x.shape[-2:])}; use "
                "PatchGANDiscriminator for smaller images"
            )
        return [self.net(x)]
