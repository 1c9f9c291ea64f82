"""Building blocks shared by every generator, discriminator and translator of the package.

DG-Net, D2RL and the GAN re-ID family build their networks from these; no method keeps a
private copy of a conv block. Shapes are ``(N, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def adaptive_instance_norm(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """AdaIN (Huang & Belongie 2017): ``gamma * (x - mu(x)) / sigma(x) + beta``.

    Args:
        x: ``(N, C, H, W)`` features; statistics are taken per sample and channel.
        gamma, beta: ``(N, C)`` scale and bias, predicted from the appearance code and passed
            explicitly (never stored on a module), so the block is DDP/DataParallel-safe.
    """
    if gamma.shape != x.shape[:2] or beta.shape != x.shape[:2]:
        raise ValueError(
            f"AdaIN parameters must be (N, C) = {tuple(x.shape[:2])}, "
            f"got gamma {tuple(gamma.shape)} and beta {tuple(beta.shape)}"
        )
    x = F.instance_norm(x, eps=eps)
    return x * gamma[:, :, None, None] + beta[:, :, None, None]


class LayerNorm2d(nn.Module):
    """Per-sample normalisation over ``(C, H, W)`` with a per-channel affine (MUNIT style)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.rand(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        flat = x.reshape(n, -1)
        mean = flat.mean(1).view(n, 1, 1, 1)
        std = flat.std(1).view(n, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def _activation(name: str) -> nn.Module:
    if name == "lrelu":
        return nn.LeakyReLU(0.2, inplace=False)
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "tanh":
        return nn.Tanh()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation '{name}' (lrelu | relu | tanh | none)")


def _norm(name: str, channels: int) -> nn.Module:
    if name == "in":
        return nn.InstanceNorm2d(channels)
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "ln":
        return LayerNorm2d(channels)
    if name in ("none", "adain"):
        return nn.Identity()  # AdaIN is applied with explicit parameters in forward
    raise ValueError(f"unknown norm '{name}' (in | bn | ln | adain | none)")


class Conv2dBlock(nn.Module):
    """Padding -> conv -> norm -> activation.

    ``norm='adain'`` makes ``forward(x, gamma, beta)`` apply :func:`adaptive_instance_norm`.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        norm: str = "none",
        activation: str = "lrelu",
        pad_type: str = "reflect",
    ):
        super().__init__()
        if pad_type not in ("reflect", "zeros", "replicate"):
            raise ValueError(f"unknown pad_type '{pad_type}' (reflect | zeros | replicate)")
        self.conv = nn.Conv2d(
            in_ch,
            out_ch,
            kernel_size,
            stride,
            padding=padding,
            dilation=dilation,
            padding_mode=pad_type,
            bias=True,
        )
        self.norm_type = norm
        self.norm = _norm(norm, out_ch)
        self.act = _activation(activation)

    def forward(
        self, x: torch.Tensor, gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_type == "adain":
            if gamma is None or beta is None:
                raise ValueError("an AdaIN block needs gamma and beta in forward()")
            x = adaptive_instance_norm(x, gamma, beta)
        else:
            x = self.norm(x)
        return self.act(x)


class ResBlock(nn.Module):
    """``x + conv3x3(norm)(dropout(conv3x3(norm, act)(x)))``, optionally followed by a ReLU;
    AdaIN parameters go through ``forward``.

    ``dropout > 0`` puts ``Dropout(dropout)`` after the first conv's activation (CycleGAN's
    ``use_dropout``: ``networks.py``, ``ResnetBlock.build_conv_block``); 0 = none.
    ``post_relu``: a ReLU after the addition (PN-GAN's released ``ResBlock``,
    ``naiq/PN_GAN`` ``script/GAN/network.py``); off by default (CycleGAN, DG-Net, UNIT)."""

    def __init__(
        self,
        dim: int,
        norm: str = "in",
        activation: str = "lrelu",
        pad: str = "reflect",
        dropout: float = 0.0,
        *,
        post_relu: bool = False,
    ):
        super().__init__()
        self.adain = norm == "adain"
        self.post_relu = bool(post_relu)
        self.conv1 = Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation, pad_type=pad)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation="none", pad_type=pad)

    def forward(self, x: torch.Tensor, adain: Sequence[torch.Tensor] | None = None):
        if self.adain:
            g1, b1, g2, b2 = adain
            out = x + self.conv2(self.drop(self.conv1(x, g1, b1)), g2, b2)
        else:
            out = x + self.conv2(self.drop(self.conv1(x)))
        return torch.relu(out) if self.post_relu else out


class ResBlocks(nn.Module):
    """A stack of :class:`ResBlock`; with AdaIN, ``forward(x, params)`` takes one 4-tuple each."""

    def __init__(
        self,
        n: int,
        dim: int,
        norm: str = "in",
        activation: str = "lrelu",
        pad="reflect",
        dropout: float = 0.0,
        *,
        post_relu: bool = False,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            ResBlock(dim, norm, activation, pad, dropout, post_relu=post_relu) for _ in range(n)
        )

    def forward(self, x: torch.Tensor, adain: Sequence[Sequence[torch.Tensor]] | None = None):
        for i, block in enumerate(self.blocks):
            x = block(x, adain[i] if adain is not None else None)
        return x


class MLP(nn.Module):
    """``in -> hidden (x n_layers-1, LReLU) -> out`` fully-connected stack, no normalisation."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, n_layers: int, act: str = "lrelu"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"MLP needs at least one layer, got n_layers={n_layers}")
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(n_layers - 1):
            layers += [nn.Linear(dim, hidden), _activation(act)]
            dim = hidden
        layers.append(nn.Linear(dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling as in DG-Net's structure encoder.

    A 1x1 branch plus one (1x1 + LReLU -> dilated 3x3) branch per dilation, concatenated and
    fused by a 1x1 conv. Every conv has instance norm; as in the official layout, the 1x1
    branch, the dilated convs and the fusion have no activation. ``(N, C, H, W) ->
    (N, out, H, W)``.
    """

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int, dilations=(3, 6, 9)):
        super().__init__()
        branches = [Conv2dBlock(in_ch, branch_ch, 1, norm="in", activation="none")]
        for d in dilations:
            branches.append(
                nn.Sequential(
                    Conv2dBlock(in_ch, branch_ch, 1, norm="in", activation="lrelu"),
                    Conv2dBlock(
                        branch_ch, branch_ch, 3, 1, d, dilation=d, norm="in", activation="none"
                    ),
                )
            )
        self.branches = nn.ModuleList(branches)
        self.fuse = Conv2dBlock(branch_ch * len(branches), out_ch, 1, norm="in", activation="none")
        self.max_dilation = max(dilations, default=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.max_dilation >= min(x.shape[-2:]):
            raise ValueError(
                f"ASPP dilation {self.max_dilation} needs a feature map larger than it (reflect "
                f"padding), got {tuple(x.shape[-2:])}; use a larger INPUT.SIZE_TRAIN or smaller "
                "MODEL.GEN.ASPP_DILATIONS"
            )
        return self.fuse(torch.cat([b(x) for b in self.branches], dim=1))


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """Mean over the channels of a normalised ``(N, C, H, W)`` batch -> ``(N, 1, H, W)``
    (RGB: the mean of R, G, B; a 1-channel infrared batch keeps its values).

    DG-Net section 3.1: the structure encoder sees a grayscale image so that colour (an
    appearance cue) cannot leak into the structure code.
    """
    return x.mean(dim=1, keepdim=True)


def init_weights(module: nn.Module, kind: str = "kaiming", std: float = 0.02) -> None:
    """Initialise conv / linear weights: ``kaiming`` (fan-in) or ``gaussian`` N(0, std)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "gaussian":
                nn.init.normal_(m.weight, 0.0, std)
            else:
                raise ValueError(f"unknown init '{kind}' (kaiming | gaussian)")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def renormalize(x: torch.Tensor, mean_in, std_in, mean_out, std_out) -> torch.Tensor:
    """Re-express a normalised ``(N, C, H, W)`` batch in other per-channel statistics:
    ``((x * std_in + mean_in) - mean_out) / std_out`` (sequences of ``C`` values, or one
    value for all channels). E.g. ImageNet-normalised -> ``[-1, 1]`` (GAN range) with
    ``mean_out = std_out = 0.5``, and back: the resolution bridge between a re-ID network's
    input and a translator's (AlignGAN's ``process_images_4_encoder``; D2RL's cascade)."""

    def col(v):
        return torch.as_tensor(v, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)

    return (x * col(std_in) + col(mean_in) - col(mean_out)) / col(std_out)


#: the non-local affinities :class:`NonLocalBlock` implements
NON_LOCAL_AFFINITIES = ("dot_over_n", "softmax")


class NonLocalBlock(nn.Module):
    """Non-local block (Wang et al., "Non-local Neural Networks", CVPR 2018, Eq. 1-2 with a
    zero-initialised BN'd output projection, so the block starts as the identity):
    ``(N, C, H, W) -> (N, C, H, W)``, ``y = x + BN(W_z (f(theta(x)^T phi(x)) g(x)))`` with
    ``theta``, ``phi``, ``g`` 1x1 convolutions (with bias) from ``C`` to ``inter`` channels and
    ``W_z`` a 1x1 convolution back to ``C``, followed by a BatchNorm2d whose weight and bias
    start at 0. ``f`` over the ``HW`` positions:

    - ``"dot_over_n"``: ``f(A) = A / HW``, no softmax (Wang et al.'s "dot product" version).
      With ``inter=1`` this is AGW's ``Non_local`` (mangye16/Cross-Modal-Re-ID-baseline,
      ``model.py``: ``inter_channels = reduc_ratio // reduc_ratio`` = 1, the softmax line
      commented out, ``f / N``);
    - ``"softmax"``: ``f(A) = softmax(A)`` over the last axis (Wang et al.'s embedded
      Gaussian version; usually with ``inter = C / 2``). Not AGW's.

    Args:
        channels: ``C``.
        inter: inner channels; ``0`` = ``max(C // 2, 1)``.
        affinity: ``"dot_over_n"`` | ``"softmax"``.

    Raises:
        ValueError: another ``affinity`` or a negative ``inter``.
    """

    def __init__(self, channels: int, inter: int = 1, affinity: str = "dot_over_n"):
        super().__init__()
        if affinity not in NON_LOCAL_AFFINITIES:
            raise ValueError(
                f"non-local affinity '{affinity}': one of {', '.join(NON_LOCAL_AFFINITIES)}"
            )
        if inter < 0:
            raise ValueError(f"non-local inner channels must be >= 0 (0 = C/2), got {inter}")
        inner = inter or max(channels // 2, 1)
        self.affinity = affinity
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        t = self.theta(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        p = self.phi(x).flatten(2)  # (N, C', HW)
        g = self.g(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        a = t @ p  # (N, HW, HW)
        attn = torch.softmax(a, dim=-1) if self.affinity == "softmax" else a / a.shape[-1]
        y = (attn @ g).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.out(y)
