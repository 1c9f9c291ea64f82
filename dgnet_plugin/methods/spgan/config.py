"""``add_spgan_config``: SPGAN's keys (Deng et al., CVPR 2018) on top of the shared
cross-domain translate-then-train recipe (CycleGAN, domains, generated-data re-ID)."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...offline_augmentation.config import add_translate_then_train_config

_S = CN()
_S.SPGAN = CN()
_S.SPGAN.CONTRASTIVE = 2.0  # lambda_3 of the contrastive term
_S.SPGAN.MARGIN = 2.0  # m of the contrastive loss
_S.SPGAN.SIAMESE_BLOCKS = 4  # (4x4 stride-2 conv + 2x2 max-pool) blocks of SiaNet
_S.SPGAN.SIAMESE_DIM = 64  # width of its first conv (doubled per block)
_S.SPGAN.DROPOUT = 0.5
# Negative pairs and form of the contrastive term: released = (x_S, x_T), the two real images,
# m_loss = (pos_S + pos_T + 2 neg) / 3 (SPGAN/train_spgan_demo.py); paper = (G(x_S), x_T) and
# (F(x_T), x_S), Hadsell's halved form averaged over the four pair groups (section 3.2)
_S.SPGAN.NEGATIVES = "released"
# SiaNet's own Adam, constant LR (train_spgan_demo.py: metric_train_op, lr 2e-4, beta1 0.5)
_S.SPGAN.SIAMESE_LR = 2e-4
_S.SPGAN.SIAMESE_BETAS = (0.5, 0.999)


def add_spgan_config(cfg: CN) -> CN:
    """SPGAN's translator recipe (CycleGAN + identity mapping 5 + contrastive 2, margin 2;
    ``SPGAN/train_spgan_demo.py``), then IDE on the translated source images with hard source
    labels (``GENERATED.ONLY``), evaluated on the target domain."""
    add_translate_then_train_config(cfg, engine="SPGANEngine")
    merge_missing(cfg, _S)
    cfg.LOSS.IDENTITY = 5.0
    return cfg
