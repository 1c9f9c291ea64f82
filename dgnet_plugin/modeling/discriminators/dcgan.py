"""The DCGAN discriminator (Radford et al., ICLR 2016), LSRO's (Zheng et al., ICCV 2017)
real/fake classifier of whole pedestrian images, trained with the BCE (vanilla GAN) loss."""

from __future__ import annotations

import torch
from torch import nn

from ..generators.dcgan import dcgan_init, dcgan_upsamplings
from .build import DISCRIMINATOR_REGISTRY


@DISCRIMINATOR_REGISTRY.register()
class DCGANDiscriminator(nn.Module):
    """Image ``(N, in_ch, H, W)`` in ``[-1, 1]`` -> ``[logits (N, 1, 1, 1)]`` (a list of one
    map, the registry's contract; one logit per image, apply
    :func:`~dgnet_plugin.losses.vanilla_gan_dis_loss`).

    DCGAN section 3: ``n`` strided 4x4 convolutions (stride 2, no pooling) doubling the width
    from ``dim``, LeakyReLU(0.2), batch norm on all but the first, then one convolution over
    the remaining ``4 x (W / 2^n)`` map to a single logit (no sigmoid: the loss takes logits).
    """

    def __init__(self, in_ch: int = 3, dim: int = 64, size=(128, 64)):
        super().__init__()
        n = dcgan_upsamplings(size)
        self.size = (int(size[0]), int(size[1]))
        layers: list[nn.Module] = []
        ch_in, ch = in_ch, dim
        for i in range(n):
            layers.append(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, True))
            ch_in, ch = ch, ch * 2
        layers.append(nn.Conv2d(ch_in, 1, (4, self.size[1] // 2**n), 1, 0))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    @classmethod
    def from_config(cls, cfg, in_ch: int = 3) -> DCGANDiscriminator:
        return cls(in_ch, cfg.MODEL.DIS.DIM, tuple(cfg.INPUT.SIZE_TRAIN))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(
                f"the DCGAN discriminator was built for {self.size[0]}x{self.size[1]} images, got "
                f"{tuple(x.shape[-2:])}; resize to the GAN's INPUT.SIZE_TRAIN"
            )
        return [self.net(x)]
