"""UNIT's coupled VAE-GAN translator (Liu, Breuel & Kautz, "Unsupervised Image-to-Image
Translation Networks", NeurIPS 2017), the image-level sub-network of D2RL (Wang et al.,
CVPR 2019, section 3.1) with configurable channels (3-channel visible, 1-channel infrared).

Two domains ``a`` and ``b``. Each has a VAE: encoder ``E_a`` / ``E_b`` and generator
(decoder) ``G_a`` / ``G_b``. The shared-latent assumption is enforced by weight sharing: the
last ``n_shared`` residual blocks of the two encoders are one module, and so are the first
``n_shared`` residual blocks of the two decoders (UNIT section 3). The "reduced VAE":
the encoder outputs only the mean ``mu``; training samples ``z = mu + eps``, ``eps ~ N(0,
I)`` (unit variance), so the KL term is ``mean(mu^2)``
(:func:`~dgnet_plugin.losses.vae_kl_loss`).

Layers (UNIT's published configuration, which the D2RL paper does not restate):
encoder = Conv7x7 (IN, ReLU) -> ``n_downsample`` x Conv4x4 stride 2 doubling the width (IN,
ReLU) -> ``n_res`` residual blocks (IN); decoder = ``n_res`` residual blocks (IN) ->
``n_downsample`` x (nearest x2, Conv5x5 halving the width, LayerNorm, ReLU) -> Conv7x7 ->
tanh. Images are in ``[-1, 1]``; the latent is ``(N, dim * 2^n_downsample, H / 2^n, W / 2^n)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..blocks import Conv2dBlock, ResBlocks, init_weights
from .build import GENERATOR_REGISTRY


class VAEEncoderStem(nn.Module):
    """The private part of a UNIT encoder: ``(N, in_ch, H, W)`` in ``[-1, 1]`` ->
    ``(N, dim * 2^n_downsample, H / 2^n, W / 2^n)`` (before the shared blocks)."""

    def __init__(self, in_ch: int, dim: int, n_downsample: int, n_res: int):
        super().__init__()
        layers = [Conv2dBlock(in_ch, dim, 7, 1, 3, norm="in", activation="relu")]
        ch = dim
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(ch, 2 * ch, 4, 2, 1, norm="in", activation="relu"))
            ch *= 2
        layers.append(ResBlocks(n_res, ch, norm="in", activation="relu"))
        self.net = nn.Sequential(*layers)
        self.out_channels = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VAEDecoderHead(nn.Module):
    """The private part of a UNIT decoder: latent features (after the shared blocks) ->
    image ``(N, out_ch, H, W)`` in ``[-1, 1]`` (tanh)."""

    def __init__(self, out_ch: int, ch: int, n_upsample: int, n_res: int):
        super().__init__()
        layers = [ResBlocks(n_res, ch, norm="in", activation="relu")]
        for _ in range(n_upsample):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                Conv2dBlock(ch, ch // 2, 5, 1, 2, norm="ln", activation="relu"),
            ]
            ch //= 2
        layers.append(Conv2dBlock(ch, out_ch, 7, 1, 3, norm="none", activation="tanh"))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


@GENERATOR_REGISTRY.register()
class UNITTranslator(nn.Module):
    """Two VAEs sharing a latent space (module docstring). Domains are named by the
    strings ``"a"`` and ``"b"`` (D2RL: a = visible, 3 channels; b = infrared, 1 channel).

    * :meth:`encode` ``(x, d) -> mu``, :meth:`sample` ``(mu) -> z`` (``mu + N(0, I)``),
      :meth:`decode` ``(z, d) -> image``;
    * ``forward(x, src, dst)``: translation ``G_dst(E_src(x))`` from the mean (no noise).

    Args:
        in_ch_a, in_ch_b: channels of the two domains.
        dim: width of the first layer (UNIT: 64).
        n_downsample: stride-2 stages (UNIT: 2).
        n_res: residual blocks per encoder and per decoder (UNIT: 4), of which ``n_shared``
            (UNIT: 1) are shared between the two encoders and between the two decoders.

    Raises:
        ValueError: ``n_shared`` outside ``[0, n_res]``.
    """

    def __init__(self, in_ch_a=3, in_ch_b=1, dim=64, n_downsample=2, n_res=4, n_shared=1):
        super().__init__()
        if not 0 <= n_shared <= n_res:
            raise ValueError(f"MODEL.GEN.N_SHARED={n_shared} must be in [0, N_RES={n_res}]")
        private = n_res - n_shared
        self.enc_a = VAEEncoderStem(in_ch_a, dim, n_downsample, private)
        self.enc_b = VAEEncoderStem(in_ch_b, dim, n_downsample, private)
        ch = self.enc_a.out_channels
        self.enc_shared = ResBlocks(n_shared, ch, norm="in", activation="relu")
        self.dec_shared = ResBlocks(n_shared, ch, norm="in", activation="relu")
        self.dec_a = VAEDecoderHead(in_ch_a, ch, n_downsample, private)
        self.dec_b = VAEDecoderHead(in_ch_b, ch, n_downsample, private)
        self.latent_channels = ch
        self.channels = {"a": in_ch_a, "b": in_ch_b}
        init_weights(self, "kaiming")

    @classmethod
    def from_config(cls, cfg, in_ch_a: int = 3, in_ch_b: int = 1) -> UNITTranslator:
        g = cfg.MODEL.GEN
        return cls(in_ch_a, in_ch_b, g.DIM, g.N_DOWNSAMPLE, g.N_RES, g.N_SHARED)

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """``E_domain(x)``: the latent mean ``mu``."""
        stem = self.enc_a if domain == "a" else self.enc_b
        return self.enc_shared(stem(x))

    @staticmethod
    def sample(mu: torch.Tensor) -> torch.Tensor:
        """``z = mu + eps``, ``eps ~ N(0, I)`` (UNIT's reparameterisation with unit variance)."""
        return mu + torch.randn_like(mu)

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """``G_domain(z)``: an image of the domain in ``[-1, 1]``."""
        head = self.dec_a if domain == "a" else self.dec_b
        return head(self.dec_shared(z))

    def forward(self, x: torch.Tensor, src: str = "a", dst: str = "b") -> torch.Tensor:
        return self.decode(self.encode(x, src), dst)
