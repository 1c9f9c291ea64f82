"""DG-Net's train / test transforms (torchvision) and random erasing (torchreid)."""

from __future__ import annotations

from collections.abc import Sequence

import torchvision.transforms as T
from PIL import Image

from ..config import ConfigError
from ..utils import torchreid_compat as tr


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


def build_transforms(cfg, is_train: bool) -> T.Compose:
    """PIL image -> normalised ``(C, H, W)`` float tensor (``C`` from ``INPUT.FORMAT``: 3 for
    RGB, ImageNet-normalised by default; 1 for L, normalised by :func:`channel_stats`).

    Train (official DG-Net / IDE recipe): RandomHorizontalFlip -> Resize((H, W), bicubic) ->
    Pad(INPUT.PADDING, edge) -> RandomCrop((H, W)). Test: Resize((H, W), bicubic).
    """
    c = input_channels(cfg)
    mean = channel_stats(cfg.INPUT.PIXEL_MEAN, c, "INPUT.PIXEL_MEAN")
    std = channel_stats(cfg.INPUT.PIXEL_STD, c, "INPUT.PIXEL_STD")
    norm = [T.ToTensor(), T.Normalize(mean, std)]
    bicubic = T.InterpolationMode.BICUBIC
    if not is_train:
        return T.Compose([T.Resize(tuple(cfg.INPUT.SIZE_TEST), interpolation=bicubic), *norm])
    size = tuple(cfg.INPUT.SIZE_TRAIN)
    ops = [T.RandomHorizontalFlip(cfg.INPUT.FLIP_PROB), T.Resize(size, interpolation=bicubic)]
    if cfg.INPUT.PADDING > 0:
        ops += [T.Pad(cfg.INPUT.PADDING, padding_mode="edge"), T.RandomCrop(size)]
    return T.Compose(ops + norm)


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
