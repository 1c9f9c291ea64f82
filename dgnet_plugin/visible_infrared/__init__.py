"""The visible-infrared family: what D2RL and AGW share beyond the core's cross-modality
datasets and protocols: the data built before a run (``proxy``: the visible-"infrared"
CUHK03 proxy and the real SYSU-MM01 samples in the SYSU-MM01 and RegDB layouts) and its keys
(``config``: ``DATASETS.VI_PROXY``). Imported by D2RL and AGW only."""

from .config import add_vi_proxy_config
from .proxy import ensure_vi_data

__all__ = ["add_vi_proxy_config", "ensure_vi_data"]
