"""The keys of the visible-infrared family: ``DATASETS.VI_PROXY``, the data built before a
D2RL or AGW run (:func:`~.proxy.ensure_vi_data`)."""

from __future__ import annotations

from ..config import CfgNode as CN
from ..config import merge_missing

_V = CN()
_V.DATASETS = CN()
# Visible-infrared data built before training (.proxy, run by the D2RL and AGW methods):
# SOURCE = the real CUHK03 crops (../shared/data/cuhk03_64x128) -> a PROXY in the SYSU-MM01
# and RegDB layouts under ROOT (NUM_IDS = (train, test) identities; view 2 rendered as
# "infrared"); SAMPLES = ../shared/data/vi_reid_samples -> the real SYSU-MM01
# crops in both layouts under ROOT. Empty = build nothing
_V.DATASETS.VI_PROXY = CN()
_V.DATASETS.VI_PROXY.SOURCE = ""
_V.DATASETS.VI_PROXY.SAMPLES = ""
_V.DATASETS.VI_PROXY.ROOT = "output/vi_data"
_V.DATASETS.VI_PROXY.NUM_IDS = (200, 60)


def add_vi_proxy_config(cfg: CN) -> CN:
    """Add ``DATASETS.VI_PROXY`` (its keys that ``cfg`` lacks)."""
    return merge_missing(cfg, _V)
