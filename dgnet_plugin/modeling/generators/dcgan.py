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


#: generator / discriminator layouts: ``tensorflow`` = DCGAN-tensorflow (carpedm20, as forked
#: by LSRO's authors: layumi/DCGAN-tensorflow ``model.py`` / ``ops.py``), ``pytorch`` = the
#: PyTorch DCGAN example's 4x4 layout
ARCHS = ("tensorflow", "pytorch")
#: noise distributions: ``uniform`` = U(-1, 1) (DCGAN-tensorflow ``model.py`` ``train``:
#: ``np.random.uniform(-1, 1)``), ``normal`` = N(0, I)
NOISES = ("uniform", "normal")


def _check(arch: str, noise: str | None = None) -> None:
    if arch not in ARCHS:
        raise ValueError(f"DCGAN arch '{arch}' (MODEL.GEN.ARCH / MODEL.DIS.ARCH) is unknown: "
                         f"{' | '.join(ARCHS)}")  # fmt: skip
    if noise is not None and noise not in NOISES:
        raise ValueError(
            f"DCGAN noise '{noise}' (MODEL.GEN.NOISE) is unknown: {' | '.join(NOISES)}"
        )


def tf_stage_size(size: tuple[int, int], stages: int = 4) -> tuple[int, int]:
    """``(H / 2^stages, W / 2^stages)``: the map DCGAN-tensorflow's generator projects the
    noise to (``s_h16, s_w16``) and its discriminator flattens.

    Raises:
        ValueError: ``H`` or ``W`` not divisible by ``2^stages`` (16).
    """
    h, w, f = int(size[0]), int(size[1]), 2**stages
    if h < f or w < f or h % f or w % f:
        raise ValueError(
            f"DCGAN image size {h}x{w} (H x W): the tensorflow layout needs H and W divisible "
            f"by {f} (e.g. 128x128, 128x64 or 64x32); set the GAN's INPUT.SIZE_TRAIN"
        )
    return h // f, w // f


def tf_init(module: nn.Module) -> None:
    """DCGAN-tensorflow's initialisation (``ops.py``): convolutions truncated N(0, 0.02)
    (``conv2d``: ``truncated_normal_initializer``, cut at 2 std), transposed convolutions and
    linear layers N(0, 0.02) (``deconv2d``, ``linear``), biases 0, batch-norm scale 1 and
    offset 0 (``tf.contrib.layers.batch_norm`` defaults)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, 0.0, 0.02, -0.04, 0.04)
        elif isinstance(m, nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@GENERATOR_REGISTRY.register()
class DCGANGenerator(nn.Module):
    """Noise ``z (N, z_dim)`` -> image ``(N, out_ch, H, W)`` in ``[-1, 1]`` (tanh).

    ``arch="tensorflow"`` (LSRO's authors' DCGAN-tensorflow fork, ``model.py``
    ``generator``): a linear projection of ``z`` to ``8 dim`` maps of ``H/16 x W/16``, batch
    norm, ReLU, then 4 transposed 5x5 convolutions of stride 2 (``8 dim -> 4 dim -> 2 dim ->
    dim -> out_ch``, each with a bias), batch norm and ReLU on all but the last (tanh);
    :func:`tf_init`. With ``dim`` 64 the widest map has 512 channels.

    ``arch="pytorch"`` (DCGAN's guidelines as in the PyTorch example, Radford et al. 2016,
    section 3): a transposed convolution of the ``1 x 1`` noise to a ``4 x (W / 2^n)`` map of
    ``dim * 2^(n-1)`` channels, then ``n`` transposed 4x4 convolutions of stride 2 halving
    the width (``n = log2(H / 4)``: 5 at 128x64); batch norm and ReLU everywhere except the
    output; :func:`dcgan_init`.

    ``noise``: the distribution of :meth:`sample_noise` (``uniform`` U(-1, 1), the fork's;
    ``normal`` N(0, I)).

    Raises:
        ValueError: an unknown ``arch`` / ``noise``, or a size the layout cannot draw.
    """

    def __init__(
        self,
        z_dim: int = 100,
        dim: int = 64,
        out_ch: int = 3,
        size=(128, 64),
        *,
        arch: str = "pytorch",
        noise: str = "normal",
    ):
        super().__init__()
        _check(arch, noise)
        self.z_dim, self.size = int(z_dim), (int(size[0]), int(size[1]))
        self.arch, self.noise = arch, noise
        self.project: nn.Module | None = None
        if arch == "tensorflow":
            self._start = tf_stage_size(self.size)
            ch = dim * 8
            self.project = nn.Linear(z_dim, ch * self._start[0] * self._start[1])
            layers: list[nn.Module] = [nn.BatchNorm2d(ch), nn.ReLU(True)]
            for i in range(4):
                last = i == 3
                out = out_ch if last else ch // 2
                layers.append(nn.ConvTranspose2d(ch, out, 5, 2, 2, output_padding=1))
                layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(True)]
                ch = out
            self.net = nn.Sequential(*layers)
            tf_init(self)
            return
        n = dcgan_upsamplings(size)
        ch = dim * 2 ** (n - 1)
        start = (4, self.size[1] // 2**n)
        layers = [
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
        """From ``MODEL.GEN.Z_DIM`` / ``DIM`` (and ``ARCH`` / ``NOISE`` when the config has
        them); the image size is ``INPUT.SIZE_TRAIN`` (the DCGAN is trained in a run of its
        own, at the size it generates)."""
        g = cfg.MODEL.GEN
        return cls(
            g.Z_DIM,
            g.DIM,
            out_ch,
            tuple(cfg.INPUT.SIZE_TRAIN),
            arch=g.get("ARCH", "pytorch"),
            noise=g.get("NOISE", "normal"),
        )

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device=None):
        """``n`` noise vectors ``(n, z_dim)`` from the generator's ``noise`` distribution
        (U(-1, 1) or N(0, I); ``generator`` on the CPU, for a reproducible set), on
        ``device``."""
        z = draw_noise((n, self.z_dim), self.noise, generator)
        return z.to(device) if device is not None else z

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"DCGAN noise must be (N, {self.z_dim}), got {tuple(z.shape)}")
        if self.project is not None:
            x = self.project(z).view(z.shape[0], -1, *self._start)
            return self.net(x)
        return self.net(z[:, :, None, None])


def draw_noise(shape, kind: str = "normal", generator: torch.Generator | None = None):
    """A ``shape`` tensor of ``kind`` noise: ``uniform`` U(-1, 1) or ``normal`` N(0, 1)."""
    _check("pytorch", kind)
    if kind == "uniform":
        return torch.rand(shape, generator=generator) * 2 - 1
    return torch.randn(shape, generator=generator)
