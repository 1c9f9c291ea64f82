"""DG-Net's generator: structure encoder ``Es`` and decoder ``G`` (paper section 3.1).

Sizes below are for a 256x128 input with the official ``GEN.DIM=16``; everything scales with
the input size and ``DIM``. Images are ImageNet-normalised, and so is the decoder output
(no tanh), matching the official code.
"""

from __future__ import annotations

import torch
from torch import nn

from ...modeling.blocks import ASPP, MLP, Conv2dBlock, ResBlocks, init_weights, to_gray
from ...modeling.generators import GENERATOR_REGISTRY


class StructureEncoder(nn.Module):
    """``Es``: grayscale ``(N, 1, H, W)`` -> structure code ``(N, 8*dim, H/4, W/4)``.

    Conv3x3 s2 (1->d), Conv3x3 (d->2d), Conv3x3 (2d->2d), Conv3x3 s2 (2d->4d), n_res residual
    blocks, then ASPP (dilations 3/6/9) to 8d channels. Instance norm, LReLU(0.2), reflect
    padding. With d=16 at 256x128 this is the paper's 128x64x32 structure code.
    """

    def __init__(self, dim=16, n_downsample=2, n_res=4, dilations=(3, 6, 9)):
        super().__init__()
        if n_downsample < 1:
            raise ValueError(f"MODEL.GEN.N_DOWNSAMPLE must be >= 1, got {n_downsample}")
        layers = [
            Conv2dBlock(1, dim, 3, 2, 1, norm="in"),
            Conv2dBlock(dim, 2 * dim, 3, 1, 1, norm="in"),
            Conv2dBlock(2 * dim, 2 * dim, 3, 1, 1, norm="in"),
        ]
        ch = 2 * dim
        for _ in range(n_downsample - 1):
            layers.append(Conv2dBlock(ch, 2 * ch, 3, 2, 1, norm="in"))
            ch *= 2
        layers.append(ResBlocks(n_res, ch, norm="in"))
        self.body = nn.Sequential(*layers)
        self.aspp = ASPP(ch, ch // 2, 2 * ch, dilations)
        self.out_channels = 2 * ch

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        return self.aspp(self.body(gray))


class Decoder(nn.Module):
    """``G``: structure code + AdaIN parameters -> ImageNet-normalised image ``(N, 3, H, W)``.

    n_res AdaIN residual blocks at the code's width, ``n_upsample`` x (nearest x2 -> Conv5x5,
    LayerNorm, LReLU) halving the channels, two Conv3x3 + LReLU, and a Conv1x1 to RGB.
    """

    def __init__(self, in_ch: int, n_upsample=2, n_res=4):
        super().__init__()
        self.res = ResBlocks(n_res, in_ch, norm="adain")
        ups = []
        ch = in_ch
        for _ in range(n_upsample):
            ups += [nn.Upsample(scale_factor=2, mode="nearest")]
            ups += [Conv2dBlock(ch, ch // 2, 5, 1, 2, norm="ln")]
            ch //= 2
        self.up = nn.Sequential(*ups)
        self.out = nn.Sequential(
            Conv2dBlock(ch, ch, 3, 1, 1),
            Conv2dBlock(ch, ch, 3, 1, 1),
            Conv2dBlock(ch, 3, 1, 1, 0, activation="none"),
        )
        self.res_channels = in_ch
        self.n_res = n_res

    def forward(self, s: torch.Tensor, adain: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
        return self.out(self.up(self.res(s, adain)))


@GENERATOR_REGISTRY.register()
class AdaINGen(nn.Module):
    """``Es`` + ``G`` + the AdaIN MLPs that map the appearance code to (gamma, beta).

    The appearance code ``f`` (``(N, app_dim)``, from Ea) is cut into ``n_res`` equal slices;
    slice k feeds two MLPs (``mlp_w[k]``, ``mlp_b[k]``) that produce the scales and biases of
    the two AdaIN layers of residual block k. The parameters are returned and passed through
    ``forward``, never stored on modules, so the generator is DDP-safe.
    """

    def __init__(
        self,
        app_dim: int,
        dim=16,
        n_downsample=2,
        n_res=4,
        mlp_dim=512,
        mlp_layers=3,
        dilations=(3, 6, 9),
    ):
        super().__init__()
        if app_dim % n_res:
            raise ValueError(
                f"appearance code size {app_dim} must split into MODEL.GEN.N_RES={n_res} slices"
            )
        self.encoder = StructureEncoder(dim, n_downsample, n_res, dilations)
        self.decoder = Decoder(self.encoder.out_channels, n_downsample, n_res)
        ch = self.decoder.res_channels
        self.slice_dim = app_dim // n_res
        self.mlp_w = nn.ModuleList(
            MLP(self.slice_dim, 2 * ch, mlp_dim, mlp_layers) for _ in range(n_res)
        )
        self.mlp_b = nn.ModuleList(
            MLP(self.slice_dim, 2 * ch, mlp_dim, mlp_layers) for _ in range(n_res)
        )
        init_weights(self, "kaiming")

    @classmethod
    def from_config(cls, cfg, app_dim: int) -> AdaINGen:
        g = cfg.MODEL.GEN
        return cls(
            app_dim,
            g.DIM,
            g.N_DOWNSAMPLE,
            g.N_RES,
            g.MLP_DIM,
            g.MLP_LAYERS,
            tuple(g.ASPP_DILATIONS),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised RGB ``(N, 3, H, W)`` -> structure code (grayscale input)."""
        return self.encoder(to_gray(x))

    def adain_params(self, f: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Appearance code ``(N, app_dim)`` -> per block ``(gamma1, beta1, gamma2, beta2)``."""
        ch = self.decoder.res_channels
        params = []
        for k, f_k in enumerate(f.split(self.slice_dim, dim=1)):
            w = self.mlp_w[k](f_k)
            b = self.mlp_b[k](f_k)
            params.append((w[:, :ch], b[:, :ch], w[:, ch:], b[:, ch:]))
        return params

    def decode(self, s: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Structure code + appearance code -> image. Pass ``f`` detached (DG-Net: generation
        losses must not reach Ea through the appearance code)."""
        return self.decoder(s, self.adain_params(f))

    def forward(self, x_structure: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Image with the structure of ``x_structure`` and the appearance code ``f``."""
        return self.decode(self.encode(x_structure), f)
