"""Configuration: fvcore ``CfgNode`` with ``_BASE_`` inheritance and UPPER_CASE keys."""

from .config import CfgNode, ConfigError, get_cfg, load_cfg_file
from .defaults import add_dgnet_config

__all__ = [
    "CfgNode",
    "ConfigError",
    "get_cfg",
    "load_cfg_file",
    "add_dgnet_config",
]
