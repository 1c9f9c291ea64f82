"""The 70x70 PatchGAN discriminator of pix2pix and CycleGAN (Isola et al., CVPR 2017,
section 3.2.2 and appendix 6.1.2; Zhu et al., ICCV 2017, appendix 7.2)."""

from __future__ import annotations

import torch
from torch import nn

from ..generators.resnet import affine_instance_norms, init_translator_weights
from .build import DISCRIMINATOR_REGISTRY


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field (pixels) of one output of :class:`PatchGANDiscriminator`: 4x4 convs,
    ``n_layers`` of stride 2 then two of stride 1. 70 for ``n_layers`` 3 (the 70x70 PatchGAN),
    34 for 2, 16 for 1."""
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = rf * s + (4 - s)
    return rf


@DISCRIMINATOR_REGISTRY.register()
class PatchGANDiscriminator(nn.Module):
    """``C64-C128-C256-C512`` then a 1-channel 4x4 conv: one real/fake score per 70x70 patch.

    ``Ck`` = 4x4 conv with ``k`` filters, instance norm (none on the first), LeakyReLU(0.2);
    the first ``n_layers`` convs have stride 2, the ``C512`` one and the output stride 1, all
    with zero padding 1. Widths ``dim * 2**i`` capped at ``8 * dim``. Input ``(N, in_ch, H,
    W)`` in the translator's range (``[-1, 1]``); output a list holding one logit map
    ``(N, 1, h, w)`` (the discriminator registry's contract): ``h = H / 2**n_layers - 2``,
    e.g. 30x30 at 256x256, 6x2 at 64x32. Scores are raw: LSGAN (CycleGAN's default) or the
    vanilla GAN's sigmoid are in :mod:`dgnet_plugin.losses.adversarial`. ``norm_affine``:
    instance norms with a learnable scale and offset (SPGAN's ``ops.instance_norm``);
    ``init``: ``normal`` N(0, 0.02) (CycleGAN) or ``xavier`` (TF-slim, SPGAN). ``padding``
    ``tf_same``: the stride-1 convs pad as TensorFlow's ``SAME`` (SPGAN: a 32x32 map at
    256x256 instead of 30x30).
    """

    def __init__(
        self,
        in_ch: int = 3,
        dim: int = 64,
        n_layers: int = 3,
        norm: str = "in",
        norm_affine: bool = False,
        init: str = "normal",
        padding: str = "torch",
    ):
        super().__init__()
        if norm not in ("in", "bn", "none"):
            raise ValueError(f"PatchGAN norm '{norm}' is unknown (in | bn | none)")

        def norm_layer(c):
            return {"in": nn.InstanceNorm2d, "bn": nn.BatchNorm2d}.get(norm, nn.Identity)(c)

        if padding not in ("torch", "tf_same"):
            raise ValueError(f"PatchGAN padding '{padding}' is unknown (torch | tf_same)")

        def conv(c_in, c_out, stride):
            # TF 'SAME' with a 4x4 kernel: stride 2 pads 1 on each side (as here), stride 1 pads
            # 1 before and 2 after, so the map keeps its size (SPGAN's 32x32 at 256)
            if padding == "tf_same" and stride == 1:
                return [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, 4, 1, 0)]
            return [nn.Conv2d(c_in, c_out, 4, stride, 1)]

        layers: list[nn.Module] = [*conv(in_ch, dim, 2), nn.LeakyReLU(0.2)]
        ch = dim
        for i in range(1, n_layers + 1):
            out = dim * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [*conv(ch, out, stride), norm_layer(out), nn.LeakyReLU(0.2)]
            ch = out
        layers += conv(ch, 1, 1)
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers
        init_translator_weights(self, init)
        if norm_affine:
            affine_instance_norms(self)

    @property
    def receptive_field(self) -> int:
        return patchgan_receptive_field(self.n_layers)

    @classmethod
    def from_config(cls, cfg, in_ch: int = 3) -> PatchGANDiscriminator:
        """From ``MODEL.DIS.{DIM, N_LAYERS, NORM, NORM_AFFINE, INIT}``
        (:func:`dgnet_plugin.offline_augmentation.config.add_cyclegan_config`; the last three
        default to False, normal, torch where a config lacks them)."""
        d = cfg.MODEL.DIS
        return cls(
            in_ch,
            d.DIM,
            d.N_LAYERS,
            d.NORM,
            norm_affine=d.get("NORM_AFFINE", False),
            init=d.get("INIT", "normal"),
            padding=d.get("PADDING", "torch"),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net(x)]
