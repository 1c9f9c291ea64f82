"""``add_ide_config``: the IDE baseline's keys (everything else it reads is core)."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing

_I = CN()
_I.ENGINE = CN()
_I.ENGINE.NAME = ""  # set to IDEEngine by add_ide_config unless given
_I.MODEL = CN()
_I.MODEL.META_ARCHITECTURE = ""  # set to IDEBaseline by add_ide_config unless given
_I.LOSS = CN()
_I.LOSS.LABEL_SMOOTH = 0.0  # cross-entropy label smoothing (0 = hard labels, as ft_net)


def add_ide_config(cfg: CN) -> CN:
    """Add the IDE keys that ``cfg`` does not have yet; its engine and meta-architecture
    unless ``cfg`` names others."""
    merge_missing(cfg, _I)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "IDEEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "IDEBaseline"
    return cfg
