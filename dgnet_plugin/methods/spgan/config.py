"""``add_spgan_config``: SPGAN's keys (Deng et al., CVPR 2018) on top of the shared CycleGAN,
cross-domain and generated-data re-ID fragments."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...config.offline import add_cyclegan_config, add_domain_config, add_generated_reid_config

_S = CN()
_S.SPGAN = CN()
_S.SPGAN.CONTRASTIVE = 2.0  # lambda_3 of the contrastive term
_S.SPGAN.MARGIN = 2.0  # m of the contrastive loss
_S.SPGAN.SIAMESE_BLOCKS = 4  # (4x4 stride-2 conv + 2x2 max-pool) blocks of SiaNet
_S.SPGAN.SIAMESE_DIM = 64  # width of its first conv (doubled per block)
_S.SPGAN.DROPOUT = 0.5


def add_spgan_config(cfg: CN) -> CN:
    """SPGAN's translator recipe (CycleGAN + identity mapping 5 + contrastive 2, margin 2;
    ``SPGAN/train_spgan_demo.py``), then IDE on the translated source images with hard source
    labels (``GENERATED.ONLY``), evaluated on the target domain."""
    add_cyclegan_config(cfg)
    add_generated_reid_config(cfg)
    add_domain_config(cfg)
    merge_missing(cfg, _S)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "SPGANEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "IDEBaseline"
    cfg.LOSS.CYCLE, cfg.LOSS.IDENTITY = 10.0, 5.0
    cfg.LOSS.LABEL.REAL, cfg.LOSS.LABEL.GENERATED = "hard", "hard"
    cfg.GENERATED.ONLY = True
    return cfg
