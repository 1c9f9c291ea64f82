"""Train / test transforms (torchvision; joint image + mask / pose with ``transforms.v2``) and
random erasing (torchreid)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchvision.transforms as T
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..config import ConfigError
from ..utils import torchreid_compat as tr
from .sample import IMG, SPATIAL_FIELDS


def input_channels(cfg) -> int:
    """Channels of the images the loaders read: 3 for ``INPUT.FORMAT`` RGB, 1 for L."""
    try:
        return Image.getmodebands(cfg.INPUT.FORMAT)
    except KeyError:
        raise ConfigError(
            f"INPUT.FORMAT '{cfg.INPUT.FORMAT}' is not a PIL image mode (RGB | L)"
        ) from None


def channel_stats(values: Sequence[float], channels: int, key: str = "INPUT.PIXEL_MEAN"):
    """Per-channel normalisation statistics for ``channels``-channel images.

    ``values`` with one entry per channel are returned as they are. RGB statistics (3
    entries) are adapted like the backbone's first convolution: 1 channel -> their mean
    (ImageNet: mean 0.449, std 0.226); ``C > 3`` -> the 3 values then their mean for each
    extra channel. Raises ``ConfigError`` otherwise.
    """
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if len(values) == 3:
        mean = sum(values) / 3
        return (mean,) if channels == 1 else (values + (mean,) * (channels - 3))[:channels]
    raise ConfigError(
        f"{key} has {len(values)} values; give one per channel ({channels}) or 3 (RGB)"
    )


#: ``INPUT.PADDING_MODE`` values: torchvision ``Pad`` modes (constant = zero fill)
PADDING_MODES = ("edge", "constant")


class RandomSizedRectCrop:
    """CamStyle's training crop (``zhunzhong07/CamStyle``, ``reid/utils/data/transforms.py``,
    ``RandomSizedRectCrop``): up to 10 tries of a crop of 0.64-1 of the image's area and
    aspect (h / w) 2-3; the first that fits is resized to ``(H, W)`` (bilinear), else the
    whole image is resized. PIL image in, PIL image out; draws with torch's generator (the
    loaders seed it per worker). ``INPUT.RANDOM_SIZED_RECT_CROP``."""

    def __init__(self, size: Sequence[int]):
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, img: Image.Image) -> Image.Image:
        w0, h0 = img.size
        out = (self.size[1], self.size[0])
        for _ in range(10):
            u = torch.rand(2).tolist()
            area = (0.64 + 0.36 * u[0]) * w0 * h0
            aspect = 2.0 + u[1]
            h, w = round((area * aspect) ** 0.5), round((area / aspect) ** 0.5)
            if w <= w0 and h <= h0:
                x1 = int(torch.randint(0, w0 - w + 1, ()).item())
                y1 = int(torch.randint(0, h0 - h + 1, ()).item())
                return img.crop((x1, y1, x1 + w, y1 + h)).resize(out, Image.BILINEAR)
        return img if img.size == out else img.resize(out, Image.BILINEAR)


class MatConvNetCrop:
    """MatConvNet's random crop (``vl_imreadjpeg`` with ``'CropSize', [min, max]``,
    ``'CropLocation', 'random'`` and ``'CropAnisotropy', [a_min, a_max]``; the crop that
    layumi/Person-reID_GAN ``train_id_net_res_market_lsro.m`` ``getBatch`` takes before its
    resize to 224x224), as ``matlab/src/vl_imreadjpeg.cu`` computes it for an image of
    ``w0 x h0`` and an output of ``W x H`` (``INPUT.SIZE_TRAIN``):

    1. anisotropy ``r = exp(log a_max + u1 (log a_min - log a_max))`` (``r = (w0/h0) / (W/H)``,
       the image's own shape, when ``a_min`` or ``a_max`` is 0); the crop's shape is
       ``(W sqrt(r), H / sqrt(r))``: with ``(1, 1)`` it has the output's aspect (a square for
       224x224: on a 64x128 Market image the largest is 64x64);
    2. it is scaled to the largest that fits, ``min(w0 / cw, h0 / ch)``, times ``s = sqrt(max^2
       + u2 (min^2 - max^2))`` (the area fraction uniform in ``[min^2, max^2]``), rounded and
       clipped to the image;
    3. its corner is uniform over every position inside the image.

    The crop is returned (PIL in, PIL out); the resize to ``(H, W)`` follows in the
    transform. Draws use torch's generator (the loaders seed it per worker).
    ``INPUT.CROP_SCALE`` / ``INPUT.CROP_ANISOTROPY``.

    Raises:
        ConfigError: a scale outside ``(0, 1]`` or ``min > max``; an anisotropy below 0 or
            ``min > max``.
    """

    def __init__(self, size: Sequence[int], scale: Sequence[float], anisotropy=(1.0, 1.0)):
        self.size = (int(size[0]), int(size[1]))
        self.scale = (float(scale[0]), float(scale[1]))
        self.anisotropy = (float(anisotropy[0]), float(anisotropy[1]))
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ConfigError(
                f"INPUT.CROP_SCALE {tuple(scale)}: (min, max) with 0 < min <= max <= 1"
            )
        if not 0 <= self.anisotropy[0] <= self.anisotropy[1]:
            raise ConfigError(
                f"INPUT.CROP_ANISOTROPY {tuple(anisotropy)}: (min, max) with 0 <= min <= max"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, anisotropy={self.anisotropy})"

    def box(self, w0: int, h0: int, u: Sequence[float]) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the crop in a ``w0 x h0`` image for the uniform numbers
        ``u = (u1, u2, u3, u4)`` in ``[0, 1)`` (anisotropy, size, x, y)."""
        out_h, out_w = self.size
        a_min, a_max = self.anisotropy
        if a_min == 0 or a_max == 0:
            ratio = (w0 / h0) / (out_w / out_h)
        else:
            ratio = math.exp(math.log(a_max) + u[0] * (math.log(a_min) - math.log(a_max)))
        cw, ch = out_w * math.sqrt(ratio), out_h / math.sqrt(ratio)
        lo, hi = self.scale
        size = math.sqrt(hi * hi + u[1] * (lo * lo - hi * hi))
        fit = min(w0 / cw, h0 / ch) * size
        # C's round (half away from zero)
        w, h = min(math.floor(cw * fit + 0.5), w0), min(math.floor(ch * fit + 0.5), h0)
        x, y = int(u[2] * (w0 - w + 1)), int(u[3] * (h0 - h + 1))
        return x, y, w, h

    def __call__(self, img: Image.Image) -> Image.Image:
        x, y, w, h = self.box(*img.size, torch.rand(4, dtype=torch.float64).tolist())
        return img.crop((x, y, x + w, y + h))


_INTERPOLATIONS = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}


def _spatial_ops(cfg, is_train: bool, tv) -> list:
    """The geometric part of the recipe, built from ``tv`` (``torchvision.transforms`` or
    its ``v2``, whose classes share these names and draws)."""
    bicubic = T.InterpolationMode.BICUBIC
    if not is_train:
        return [tv.Resize(tuple(cfg.INPUT.SIZE_TEST), interpolation=bicubic)]
    size = tuple(cfg.INPUT.SIZE_TRAIN)
    if cfg.INPUT.get("RANDOM_SIZED_RECT_CROP", False):
        if tv is not T:
            raise ConfigError(
                "INPUT.RANDOM_SIZED_RECT_CROP works on images alone, not with masks or poses"
            )
        return [RandomSizedRectCrop(size), tv.RandomHorizontalFlip(cfg.INPUT.FLIP_PROB)]
    load = tuple(cfg.INPUT.get("LOAD_SIZE", ()) or ())
    if load:  # CycleGAN's resize_and_crop (base_dataset.py, get_transform)
        mode = cfg.INPUT.get("LOAD_INTERPOLATION", "bicubic")
        if mode not in _INTERPOLATIONS:
            raise ConfigError(f"INPUT.LOAD_INTERPOLATION '{mode}': choose bicubic or bilinear")
        return [
            tv.Resize(load, interpolation=_INTERPOLATIONS[mode]),
            tv.RandomCrop(size),
            tv.RandomHorizontalFlip(cfg.INPUT.FLIP_PROB),
        ]
    mode = cfg.INPUT.get("INTERPOLATION_TRAIN", "bicubic")
    if mode not in _INTERPOLATIONS:
        raise ConfigError(f"INPUT.INTERPOLATION_TRAIN '{mode}': choose bicubic or bilinear")
    ops = [
        tv.RandomHorizontalFlip(cfg.INPUT.FLIP_PROB),
        tv.Resize(size, interpolation=_INTERPOLATIONS[mode]),
    ]
    scale = tuple(cfg.INPUT.get("CROP_SCALE", ()) or ())
    if scale:  # MatConvNet's crop, then the resize (vl_imreadjpeg)
        if tv is not T:
            raise ConfigError("INPUT.CROP_SCALE works on images alone, not with masks or poses")
        aniso = tuple(cfg.INPUT.get("CROP_ANISOTROPY", (1.0, 1.0)))
        ops.insert(0, MatConvNetCrop(size, scale, aniso))
    if cfg.INPUT.PADDING > 0:
        mode = cfg.INPUT.PADDING_MODE
        if mode not in PADDING_MODES:
            raise ConfigError(f"INPUT.PADDING_MODE '{mode}': one of {', '.join(PADDING_MODES)}")
        ops += [tv.Pad(cfg.INPUT.PADDING, padding_mode=mode), tv.RandomCrop(size)]
    return ops


def _to_normalised_tensor(cfg, channels: int | None = None) -> list:
    c = channels or input_channels(cfg)
    mean = channel_stats(cfg.INPUT.PIXEL_MEAN, c, "INPUT.PIXEL_MEAN")
    std = channel_stats(cfg.INPUT.PIXEL_STD, c, "INPUT.PIXEL_STD")
    return [T.ToTensor(), T.Normalize(mean, std)]


def build_transforms(cfg, is_train: bool, channels: int | None = None) -> T.Compose:
    """PIL image -> normalised ``(C, H, W)`` float tensor (``C`` from ``INPUT.FORMAT``: 3 for
    RGB, ImageNet-normalised by default; 1 for L, normalised by :func:`channel_stats`;
    ``channels`` overrides it, e.g. 1 for the infrared images of a cross-modality set).

    Train (official DG-Net / IDE recipe): RandomHorizontalFlip -> Resize((H, W), bicubic) ->
    Pad(INPUT.PADDING, INPUT.PADDING_MODE: edge, or constant = zeros as AGW) ->
    RandomCrop((H, W)). Test: Resize((H, W), bicubic).
    Where the config has them: ``INPUT.LOAD_SIZE`` (CycleGAN's resize_and_crop: Resize(LOAD_SIZE,
    ``INPUT.LOAD_INTERPOLATION``) -> RandomCrop((H, W)) -> flip) or
    ``INPUT.RANDOM_SIZED_RECT_CROP`` (CamStyle: :class:`RandomSizedRectCrop` -> flip);
    ``INPUT.CROP_SCALE`` (MatConvNet's :class:`MatConvNetCrop` first, LSRO);
    ``INPUT.INTERPOLATION_TRAIN`` (the training resize's filter, bicubic by default).

    Raises:
        ConfigError: an ``INPUT.PADDING_MODE`` other than edge | constant, an
            ``INPUT.LOAD_INTERPOLATION`` or ``INTERPOLATION_TRAIN`` other than bicubic |
            bilinear, or a crop scale or anisotropy out of range.
    """
    return T.Compose(_spatial_ops(cfg, is_train, T) + _to_normalised_tensor(cfg, channels))


class JointTransform:
    """The recipe of :func:`build_transforms` applied with *one* random draw to the image and
    to its spatial fields (``mask``, ``pose``: :data:`~.sample.SPATIAL_FIELDS`), with
    ``torchvision.transforms.v2``.

    ``__call__(sample)`` takes a sample dict with ``img`` a PIL image and the spatial fields
    ``(K, H, W)`` or ``(H, W)`` tensors of the image's size; it returns a new dict with ``img``
    normalised as by :func:`build_transforms` and each spatial field flipped / resized
    (nearest neighbour: masks stay binary, heat-map peaks keep their value) / padded
    (``INPUT.PADDING_MODE``) / cropped like the image, as a float tensor ``(K, H, W)``. Other
    fields pass through.
    With the same torch seed the image equals :func:`build_transforms`' output bit for bit
    (tested), so a method may switch to it without changing its images.
    """

    def __init__(self, cfg, is_train: bool):
        self.spatial = v2.Compose(_spatial_ops(cfg, is_train, v2))
        self.to_tensor = T.Compose(_to_normalised_tensor(cfg))

    def __call__(self, sample: dict) -> dict:
        keys = [k for k in SPATIAL_FIELDS if sample.get(k) is not None]
        w, h = sample[IMG].size
        fields = []
        for k in keys:
            t = torch.as_tensor(sample[k])
            t = t[None] if t.ndim == 2 else t
            if tuple(t.shape[-2:]) != (h, w):
                raise ValueError(
                    f"sample field '{k}' is {tuple(t.shape[-2:])} but the image is {(h, w)}; "
                    "spatial fields must have the image's size"
                )
            fields.append(tv_tensors.Mask(t))
        img, *fields = self.spatial(sample[IMG], *fields)
        out = dict(sample)
        out[IMG] = self.to_tensor(img)
        for k, t in zip(keys, fields):
            out[k] = t.as_subclass(torch.Tensor).float()
        return out


def build_random_erasing(cfg):
    """torchreid's ``RandomErasing`` with DG-Net's settings (area 0.02-0.4, aspect >= 0.3,
    fill ``INPUT.REA.VALUE`` = 0 in normalised space), or ``None`` when ``INPUT.REA.PROB`` is 0.
    It erases in place: apply it to a copy. 1- and 3-channel images (``INPUT.FORMAT``) only:
    torchreid's eraser fills only the first channel of any other count."""
    rea = cfg.INPUT.REA
    if rea.PROB <= 0:
        return None
    channels = input_channels(cfg)
    if channels not in (1, 3):
        raise ConfigError(
            f"random erasing (INPUT.REA.PROB > 0) supports 1- or 3-channel images, INPUT.FORMAT "
            f"'{cfg.INPUT.FORMAT}' has {channels}; set INPUT.REA.PROB 0"
        )
    return tr.RandomErasing(
        probability=rea.PROB,
        sl=rea.AREA[0],
        sh=rea.AREA[1],
        r1=rea.MIN_ASPECT,
        mean=[rea.VALUE] * channels,
    )
