"""``add_agw_config``: the AGW cross-modality baseline's keys. Sources: [AGW] the official
code (mangye16/Cross-Modal-Re-ID-baseline: ``model.py``, ``train.py``, ``loss.py``), [ours]
choices of this package."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...visible_infrared.config import add_vi_proxy_config

_A = CN()
_A.ENGINE = CN()
_A.ENGINE.NAME = ""  # set to AGWEngine unless given
_A.MODEL = CN()
_A.MODEL.META_ARCHITECTURE = ""  # set to AGW unless given
_A.MODEL.AGW = CN()
_A.MODEL.AGW.NON_LOCAL = True  # [AGW] 2 non-local blocks in stage 2 and 3 in stage 3
# Inner channels of theta / phi / g: 1 [AGW] (model.py Non_local: reduc_ratio // reduc_ratio);
# 0 = C / 2 (Wang et al.'s usual width)
_A.MODEL.AGW.NON_LOCAL_INTER = 1
# Affinity: dot_over_n [AGW] (theta^T phi / N, its softmax line is commented out) | softmax
# (Wang et al.'s embedded Gaussian)
_A.MODEL.AGW.NON_LOCAL_AFFINITY = "dot_over_n"
# Where the blocks sit: interleaved [AGW] (after the last 2 blocks of stage 2 and the last 3 of
# stage 3, model.py NL_2_idx / NL_3_idx) | after_stage (all after the stage, back to back)
_A.MODEL.AGW.NON_LOCAL_POSITION = "interleaved"
# Initial scale of the BNNeck's BatchNorm1d: normal [AGW] (N(1, 0.01), model.py
# weights_init_kaiming) | ones (torch's default 1)
_A.MODEL.AGW.BN_GAMMA_INIT = "normal"
# Infrared input: rgb3 [AGW] (the grey image as 3 RGB channels through an unchanged copy of the
# ImageNet stem; AGW reads SYSU-MM01's infrared images as RGB) | gray1 (one channel, the
# stem's first convolution = the mean of its RGB filters)
_A.MODEL.AGW.IR_INPUT = "rgb3"
# test feature: bn (after the BNNeck) | pool (the GeM feature); AGW reports both [AGW]
_A.MODEL.AGW.TEST_FEATURE = "bn"
_A.SOLVER = CN()
_A.SOLVER.WARMUP_ITERS = 0  # LR warm-up length in iterations (AGW: 10 epochs) [AGW]
# Shape of the warm-up: 0 = linear per iteration from 1 / WARMUP_ITERS; n > 0 = n equal
# constant stages at 1/n, 2/n, ... (AGW: 10, one per epoch, the first at 0.1 x; train.py
# adjust_learning_rate)
_A.SOLVER.WARMUP_STAGES = 10


def add_agw_config(cfg: CN) -> CN:
    """Add the AGW keys that ``cfg`` does not have yet; its engine, meta-architecture and the
    core values AGW sets differently, unless ``cfg`` names others."""
    merge_missing(cfg, _A)
    add_vi_proxy_config(cfg)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "AGWEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "AGW"
    cfg.MODEL.HEADS.POOL = "gem"  # [AGW] GeM, p = 3
    cfg.MODEL.HEADS.NAME = "BNNeckHead"  # [AGW]
    cfg.SOLVER.REID.BASE_LR = 0.01  # [AGW] backbone 0.01, head 0.1
    cfg.SOLVER.REID.HEADS_LR_FACTOR = 10.0
    return cfg
