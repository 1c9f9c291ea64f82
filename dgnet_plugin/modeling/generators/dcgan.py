"""The DCGAN generator (Radford et al., ICLR 2016), as LSRO uses it (Zheng et al., ICCV 2017,
section 3.1: a DCGAN trained on the re-ID training images, 100-d noise, generated pedestrians
then used as unlabeled training data)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .build import GENERATOR_REGISTRY


def dcgan_upsamplings(size: tuple[int, int], start_height: int = 4) -> int:
    """How many stride-2 (de)convolutions take a ``start_height x (W / 2^n)`` map to ``size``
    ``(H, W)`` (``n = log2(H / start_height)``).

    Raises:
        ValueError: ``H / start_height`` is not a power of two >= 2, or ``W`` is not divisible by
            ``2^n`` (e.g. 128x64 -> 5 steps from 4x2; 64x32 -> 4 steps from 4x2).
    """
    h, w = int(size[0]), int(size[1])
    n = round(math.log2(h / start_height)) if h >= start_height else -1
    if n < 1 or start_height * 2**n != h or w % 2**n:
        raise ValueError(
            f"DCGAN image size {h}x{w} (H x W): H must be {start_height} x 2^n with n >= 1 and W "
            f"divisible by 2^n (e.g. 128x64 or 64x32); set the GAN's INPUT.SIZE_TRAIN"
        )
    return n


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation (section 4): conv weights N(0, 0.02); batch-norm scale N(1, 0.02),
    bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@GENERATOR_REGISTRY.register()
class DCGANGenerator(nn.Module):
    """Noise ``z (N, z_dim)`` -> image ``(N, out_ch, H, W)`` in ``[-1, 1]`` (tanh).

    DCGAN's architecture guidelines (Radford et al. 2016, section 3): "project and reshape"
    of ``z`` to a ``4 x (W / 2^n)`` map of ``dim * 2^(n-1)`` channels (a transposed convolution
    of the ``1 x 1`` noise), then ``n`` fractionally-strided 4x4 convolutions (stride 2) halving
    the width each time; batch norm and ReLU everywhere except the output (tanh, no norm).
    LSRO's setting: ``z_dim`` 100, output 128x64 (``n`` = 5: 4x2 -> 8x4 -> ... -> 128x64).
    """

    def __init__(self, z_dim: int = 100, dim: int = 64, out_ch: int = 3, size=(128, 64)):
        super().__init__()
        n = dcgan_upsamplings(size)
        self.z_dim, self.size = int(z_dim), (int(size[0]), int(size[1]))
        ch = dim * 2 ** (n - 1)
        start = (4, self.size[1] // 2**n)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, start, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for i in range(n):
            last = i == n - 1
            out = out_ch if last else ch // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(True)]
            ch = out
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    @classmethod
    def from_config(cls, cfg, out_ch: int = 3) -> DCGANGenerator:
        """From ``MODEL.GEN.Z_DIM`` / ``DIM``; the image size is ``INPUT.SIZE_TRAIN`` (the
        DCGAN is trained in a run of its own, at the size it generates)."""
        g = cfg.MODEL.GEN
        return cls(g.Z_DIM, g.DIM, out_ch, tuple(cfg.INPUT.SIZE_TRAIN))

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device=None):
        """``n`` noise vectors ``(n, z_dim)`` from N(0, I) (``generator`` on the CPU, for a
        reproducible set), on ``device``."""
        z = torch.randn(n, self.z_dim, generator=generator)
        return z.to(device) if device is not None else z

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"DCGAN noise must be (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])
