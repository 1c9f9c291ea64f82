"""``add_camstyle_config``: CamStyle's keys (Zhong et al., CVPR 2018) on top of the shared
CycleGAN and generated-data re-ID fragments."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...offline_augmentation.config import add_cyclegan_config, add_generated_reid_config

_C = CN()
_C.CAMSTYLE = CN()
# The pair of cameras (1-based, as in Market names) a translator stage trains on; set by the
# pipeline for each stage (one CycleGAN per pair, C(C-1)/2 of them)
_C.CAMSTYLE.PAIR = (1, 2)
# Cameras to transfer between; () = every camera of the training set
_C.CAMSTYLE.CAMERAS = ()


def add_camstyle_config(cfg: CN) -> CN:
    """CycleGAN's translator recipe (``resnet_9blocks``, 70x70 PatchGAN, LSGAN, lambda 10,
    identity 5, Adam 2e-4, pool 50), CamStyle's re-ID recipe: LSR with epsilon 0.1 on the
    transferred images, hard labels on the real ones, 46 transferred images per batch of 128
    real ones (``--camstyle 46``), the two streams through two forward passes and their losses
    averaged each over its own samples (``GENERATED.SEPARATE_FORWARD``). Its engine and the
    IDE re-ID network unless ``cfg`` names others."""
    add_cyclegan_config(cfg)
    add_generated_reid_config(cfg)
    merge_missing(cfg, _C)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "CamStyleEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "IDEBaseline"
    cfg.LOSS.LABEL.REAL, cfg.LOSS.LABEL.GENERATED, cfg.LOSS.LABEL.EPSILON = "hard", "lsr", 0.1
    cfg.GENERATED.PER_BATCH = 46
    # two forward passes, CE(real).mean() + LSR(transferred).mean() (reid/trainers.py,
    # CamStyleTrainer._forward / _lsr_loss)
    cfg.GENERATED.SEPARATE_FORWARD = True
    return cfg
