"""DG-Net's train / test transforms (torchvision) and random erasing (torchreid)."""

from __future__ import annotations

import torchvision.transforms as T

from ..utils import torchreid_compat as tr


def build_transforms(cfg, is_train: bool) -> T.Compose:
    """PIL image -> ImageNet-normalised ``(3, H, W)`` float tensor.

    Train (official DG-Net / IDE recipe): RandomHorizontalFlip -> Resize((H, W), bicubic) ->
    Pad(INPUT.PADDING, edge) -> RandomCrop((H, W)). Test: Resize((H, W), bicubic).
    """
    norm = [T.ToTensor(), T.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)]
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
    It erases in place: apply it to a copy."""
    rea = cfg.INPUT.REA
    if rea.PROB <= 0:
        return None
    return tr.RandomErasing(
        probability=rea.PROB,
        sl=rea.AREA[0],
        sh=rea.AREA[1],
        r1=rea.MIN_ASPECT,
        mean=[rea.VALUE] * 3,
    )
