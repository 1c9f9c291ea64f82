"""``add_agw_config``: the AGW cross-modality baseline's keys. Sources: [AGW] the official
code (mangye16/Cross-Modal-Re-ID-baseline: ``model.py``, ``train.py``, ``loss.py``), [ours]
choices of this package."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing

_A = CN()
_A.ENGINE = CN()
_A.ENGINE.NAME = ""  # set to AGWEngine unless given
_A.MODEL = CN()
_A.MODEL.META_ARCHITECTURE = ""  # set to AGW unless given
_A.MODEL.AGW = CN()
_A.MODEL.AGW.NON_LOCAL = True  # [AGW] 2 non-local blocks in stage 2 and 3 in stage 3
# test feature: bn (after the BNNeck) | pool (the GeM feature); AGW reports both [AGW]
_A.MODEL.AGW.TEST_FEATURE = "bn"
_A.SOLVER = CN()
_A.SOLVER.WARMUP_ITERS = 0  # linear LR warm-up (AGW: 10 epochs) [AGW]


def add_agw_config(cfg: CN) -> CN:
    """Add the AGW keys that ``cfg`` does not have yet; its engine, meta-architecture and the
    core values AGW sets differently, unless ``cfg`` names others."""
    merge_missing(cfg, _A)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "AGWEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "AGW"
    cfg.MODEL.HEADS.POOL = "gem"  # [AGW] GeM, p = 3
    cfg.MODEL.HEADS.NAME = "BNNeckHead"  # [AGW]
    cfg.SOLVER.REID.BASE_LR = 0.01  # [AGW] backbone 0.01, head 0.1
    cfg.SOLVER.REID.HEADS_LR_FACTOR = 10.0
    return cfg
