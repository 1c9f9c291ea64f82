"""The DCGAN discriminator (Radford et al., ICLR 2016), LSRO's (Zheng et al., ICCV 2017)
real/fake classifier of whole pedestrian images, trained with the BCE (vanilla GAN) loss."""

from __future__ import annotations

import torch
from torch import nn

from ..generators.dcgan import _check, dcgan_init, dcgan_upsamplings, tf_init, tf_stage_size
from .build import DISCRIMINATOR_REGISTRY


@DISCRIMINATOR_REGISTRY.register()
class DCGANDiscriminator(nn.Module):
    """Image ``(N, in_ch, H, W)`` in ``[-1, 1]`` -> ``[logits (N, 1, 1, 1)]`` (a list of one
    map, the registry's contract; one logit per image, apply
    :func:`~dgnet_plugin.losses.vanilla_gan_dis_loss`).

    ``arch="tensorflow"`` (LSRO's authors' DCGAN-tensorflow fork, ``model.py``
    ``discriminator``): 4 convolutions 5x5 of stride 2 (``dim, 2 dim, 4 dim, 8 dim``, each
    with a bias), batch norm on all but the first, LeakyReLU(0.2), then a linear layer on the
    flattened ``8 dim x H/16 x W/16`` map to one logit; :func:`tf_init`.

    ``arch="pytorch"`` (DCGAN section 3, the PyTorch example's layout): ``n`` strided 4x4
    convolutions (stride 2, no pooling) doubling the width from ``dim``, LeakyReLU(0.2), batch
    norm on all but the first, then one convolution over the remaining ``4 x (W / 2^n)`` map
    to a single logit (no sigmoid: the loss takes logits).
    """

    def __init__(self, in_ch: int = 3, dim: int = 64, size=(128, 64), *, arch: str = "pytorch"):
        super().__init__()
        _check(arch)
        self.size = (int(size[0]), int(size[1]))
        self.arch = arch
        self.head: nn.Module | None = None
        layers: list[nn.Module] = []
        if arch == "tensorflow":
            h, w = tf_stage_size(self.size)
            ch_in = in_ch
            for i in range(4):
                ch = dim * 2**i
                layers.append(nn.Conv2d(ch_in, ch, 5, 2, 2))
                if i:
                    layers.append(nn.BatchNorm2d(ch))
                layers.append(nn.LeakyReLU(0.2, True))
                ch_in = ch
            self.net = nn.Sequential(*layers)
            self.head = nn.Linear(ch_in * h * w, 1)
            tf_init(self)
            return
        n = dcgan_upsamplings(size)
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
        """From ``MODEL.DIS.DIM`` (and ``MODEL.DIS.ARCH`` when the config has it) at
        ``INPUT.SIZE_TRAIN``."""
        d = cfg.MODEL.DIS
        return cls(in_ch, d.DIM, tuple(cfg.INPUT.SIZE_TRAIN), arch=d.get("ARCH", "pytorch"))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(
                f"the DCGAN discriminator was built for {self.size[0]}x{self.size[1]} images, got "
                f"{tuple(x.shape[-2:])}; resize to the GAN's INPUT.SIZE_TRAIN"
            )
        if self.head is not None:
            return [self.head(self.net(x).flatten(1)).view(-1, 1, 1, 1)]
        return [self.net(x)]
