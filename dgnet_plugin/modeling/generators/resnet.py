"""CycleGAN's ResNet translator (Zhu et al., ICCV 2017, appendix 7.2; Johnson et al. 2016):
``c7s1-k, d2k, d4k, R4k x n, u2k, uk, c7s1-C_out``, instance norm, reflection padding, tanh.
Also the generator of SPGAN, PTGAN and CamStyle (``resnet_9blocks``) and, with a 6-channel
input (image + pose map), of PN-GAN."""

from __future__ import annotations

import torch
from torch import nn

from ..blocks import Conv2dBlock, ResBlocks, init_weights
from .build import GENERATOR_REGISTRY

UPSAMPLE_MODES = ("transpose", "nearest")
#: weight initialisations: normal = N(0, 0.02) (CycleGAN's init_type normal); default =
#: PyTorch's own layer defaults (PN-GAN's released training calls no init); xavier = Glorot
#: uniform (the TF-slim default of SPGAN's released layers)
INIT_MODES = ("normal", "default", "xavier")
PADDING_MODES = ("torch", "tf_same")


def affine_instance_norms(module: nn.Module) -> nn.Module:
    """Replace every ``InstanceNorm2d`` under ``module`` by one with a learnable scale
    (initialised N(1, 0.02)) and offset (0): SPGAN's ``ops.instance_norm``
    (``SPGAN/Utils/ops.py``). Returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, nn.InstanceNorm2d) and not child.affine:
            new = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=True)
            nn.init.normal_(new.weight, 1.0, 0.02)
            nn.init.zeros_(new.bias)
            setattr(module, name, new)
        else:
            affine_instance_norms(child)
    return module


def init_translator_weights(module: nn.Module, init: str) -> None:
    """Conv / transposed-conv / linear weights of a translator network, zero biases:
    ``normal`` N(0, 0.02) (CycleGAN's ``init_type normal``; convs and linears first, then the
    transposed convs: the random stream of a seeded run is the one this package always drew),
    ``xavier`` (Glorot uniform: the TF-slim default of SPGAN's released layers) or
    ``default`` (PyTorch's layer initialisation, left as built).

    Raises:
        ValueError: another ``init``.
    """
    if init not in INIT_MODES:
        raise ValueError(f"init '{init}' is unknown; choose one of {', '.join(INIT_MODES)}")
    if init == "default":
        return
    if init == "normal":
        init_weights(module, "gaussian", 0.02)
        for m in module.modules():  # init_weights covers Conv2d / Linear only
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@GENERATOR_REGISTRY.register()
class ResnetGenerator(nn.Module):
    """Image-to-image translator ``(N, in_ch, H, W) -> (N, out_ch, H, W)`` in ``[-1, 1]``.

    Layers (CycleGAN appendix 7.2, ``k = dim``): a 7x7 conv (reflect padding) with ``k``
    filters; ``n_down`` stride-2 3x3 convs doubling the width (``d2k, d4k``); ``n_blocks``
    residual blocks (two 3x3 convs, reflect padding, instance norm, ReLU); ``n_down``
    stride-2 3x3 transposed convs halving it (``u2k, uk``); a 7x7 conv to ``out_ch`` and tanh.
    Every conv but the last has instance norm (no affine) and ReLU. ``H`` and ``W`` must be
    divisible by ``2 ** n_down`` (4 by default).

    ``upsample="nearest"`` replaces each transposed conv by a nearest-neighbour 2x upsampling
    and a 3x3 conv (resize-convolution; Odena et al., "Deconvolution and Checkerboard
    Artifacts", Distill 2016): not CycleGAN's layer, an option for narrow generators trained
    briefly, whose transposed convs print a visible checkerboard (measured in the CamStyle
    CPU demo: ``configs/camstyle_cpu_demo.yml``).

    CycleGAN uses ``n_blocks`` 6 at 128x128 and 9 at 256x256 (``resnet_6blocks`` /
    ``resnet_9blocks``), ``dim`` 64. Inputs are images scaled to ``[-1, 1]``
    (``INPUT.PIXEL_MEAN`` = ``INPUT.PIXEL_STD`` = 0.5); channel counts are free: 1 (infrared),
    3 (RGB), 6 (RGB + a 3-channel pose image, PN-GAN).
    Weights start N(0, 0.02) (CycleGAN's ``init_type normal``; ``init="xavier"``: Glorot
    uniform, the TF-slim default of SPGAN's release; ``"default"``: PyTorch's layer
    initialisation, as PN-GAN's released training, which calls no init).

    Keyword options for PN-GAN's released ``Res_Generator`` (``naiq/PN_GAN``
    ``script/GAN/network.py``): ``res_pad`` the residual blocks' padding (``"zeros"`` there),
    ``res_post_relu`` a ReLU after each block's addition, ``out_bias`` the last 7x7 conv's
    bias (none there). From ``MODEL.GEN.{RES_PAD, RES_POST_RELU, OUT_BIAS, INIT}``.

    ``dropout`` > 0: ``Dropout(dropout)`` inside every residual block after its first conv
    (CycleGAN's ``use_dropout``, on by default in CamStyle's fork: ``options/base_options.py``
    ``--no_dropout`` False; ``MODEL.GEN.DROPOUT``). ``norm_affine``: instance norms with a
    learnable scale and offset (SPGAN's ``ops.instance_norm``; ``MODEL.GEN.NORM_AFFINE``).
    ``padding="tf_same"``: the strided convs pad as TensorFlow's ``SAME`` (one zero row and
    column after the image, none before: SPGAN's ``slim.conv2d``) instead of one on each side
    (``MODEL.GEN.PADDING``); the transposed convs already match TF's ``SAME``.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        dim: int = 64,
        n_blocks: int = 9,
        n_down: int = 2,
        upsample: str = "transpose",
        *,
        res_pad: str = "reflect",
        res_post_relu: bool = False,
        out_bias: bool = True,
        init: str = "normal",
        dropout: float = 0.0,
        norm_affine: bool = False,
        padding: str = "torch",
    ):
        super().__init__()
        if init not in INIT_MODES:
            raise ValueError(
                f"init '{init}' (MODEL.GEN.INIT) is unknown; choose one of {', '.join(INIT_MODES)}"
            )
        if padding not in PADDING_MODES:
            raise ValueError(
                f"padding '{padding}' (MODEL.GEN.PADDING) is unknown; choose one of "
                f"{', '.join(PADDING_MODES)}"
            )
        if n_blocks < 0 or n_down < 0:
            raise ValueError(f"n_blocks ({n_blocks}) and n_down ({n_down}) must be >= 0")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(
                f"upsample '{upsample}' (MODEL.GEN.UPSAMPLE) is unknown; choose one of "
                f"{', '.join(UPSAMPLE_MODES)}"
            )
        self.n_down = n_down
        layers: list[nn.Module] = [Conv2dBlock(in_ch, dim, 7, 1, 3, norm="in", activation="relu")]
        ch = dim
        for _ in range(n_down):
            if padding == "tf_same":  # TF 'SAME' at stride 2, kernel 3: one zero row / column after
                down = nn.Sequential(
                    nn.ZeroPad2d((0, 1, 0, 1)),
                    Conv2dBlock(
                        ch, 2 * ch, 3, 2, 0, norm="in", activation="relu", pad_type="zeros"
                    ),
                )
            else:
                down = Conv2dBlock(
                    ch, 2 * ch, 3, 2, 1, norm="in", activation="relu", pad_type="zeros"
                )
            layers.append(down)
            ch *= 2
        layers.append(
            ResBlocks(
                n_blocks,
                ch,
                norm="in",
                activation="relu",
                pad=res_pad,
                dropout=dropout,
                post_relu=res_post_relu,
            )
        )
        for _ in range(n_down):
            if upsample == "transpose":
                up = [nn.ConvTranspose2d(ch, ch // 2, 3, 2, padding=1, output_padding=1)]
            else:
                up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch // 2, 3, 1, 1)]
            layers += [*up, nn.InstanceNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        out = Conv2dBlock(ch, out_ch, 7, 1, 3, norm="none", activation="tanh")
        if not out_bias:
            out.conv.register_parameter("bias", None)
        layers.append(out)
        self.net = nn.Sequential(*layers)
        init_translator_weights(self, init)
        if norm_affine:
            affine_instance_norms(self)

    @classmethod
    def from_config(cls, cfg, in_channels: int | None = None, out_channels: int | None = None):
        """From ``MODEL.GEN.{IN_CHANNELS, OUT_CHANNELS, DIM, N_BLOCKS, N_DOWNSAMPLE,
        UPSAMPLE, DROPOUT, NORM_AFFINE, INIT, PADDING}`` (the keys of
        :func:`dgnet_plugin.offline_augmentation.config.add_cyclegan_config`; the last four default
        to 0, False, normal, torch where a config lacks them);
        the keyword arguments override the channel counts (a translator between 1- and
        3-channel domains)."""
        g = cfg.MODEL.GEN
        return cls(
            in_channels if in_channels is not None else g.IN_CHANNELS,
            out_channels if out_channels is not None else g.OUT_CHANNELS,
            g.DIM,
            g.N_BLOCKS,
            g.N_DOWNSAMPLE,
            g.UPSAMPLE,
            res_pad=g.get("RES_PAD", "reflect"),
            res_post_relu=g.get("RES_POST_RELU", False),
            out_bias=g.get("OUT_BIAS", True),
            init=g.get("INIT", "normal"),
            dropout=g.get("DROPOUT", 0.0),
            norm_affine=g.get("NORM_AFFINE", False),
            padding=g.get("PADDING", "torch"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2**self.n_down
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(
                f"ResnetGenerator: image size {tuple(x.shape[-2:])} must be divisible by {f} "
                f"(2 ** n_down); change INPUT.SIZE_TRAIN"
            )
        return self.net(x)
