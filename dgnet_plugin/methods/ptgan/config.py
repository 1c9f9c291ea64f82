"""``add_ptgan_config``: PTGAN's keys (Wei et al., CVPR 2018) on top of the shared
cross-domain translate-then-train recipe (CycleGAN, domains, generated-data re-ID) and the
mask keys."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...offline_augmentation.config import add_mask_config, add_translate_then_train_config

_P = CN()
_P.PTGAN = CN()
# lambda_1 of L_PTGAN = L_Style + lambda_1 L_ID (the paper's value is not in our reference;
# 10 keeps the masked term on the scale of the cycle term) [ours]
_P.PTGAN.ID_WEIGHT = 10.0
# Norm of L_ID per image: paper = ||(G(a) - a) * M(a)||_2 (Eq. 4, the raw L2 norm); rms = that
# norm / sqrt(C H W), independent of the image size [ours] (the CPU demo's scale)
_P.PTGAN.ID_NORM = "rms"


def add_ptgan_config(cfg: CN) -> CN:
    """PTGAN's translator: CycleGAN's style loss (LSGAN + ``LOSS.CYCLE`` 10; no plain
    identity mapping) + ``PTGAN.ID_WEIGHT`` x the foreground-masked identity term, masks from
    ``MASKS``; then IDE on the transferred source images with hard source labels."""
    add_translate_then_train_config(cfg, engine="PTGANEngine")
    add_mask_config(cfg)
    merge_missing(cfg, _P)
    cfg.LOSS.IDENTITY = 0.0
    return cfg
