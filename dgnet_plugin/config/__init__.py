"""Configuration: fvcore ``CfgNode`` with ``_BASE_`` inheritance and UPPER_CASE keys; the
core defaults, and the method registry through which a method adds its own keys."""

from .config import CfgNode, ConfigError, merge_missing, register_renamed_key
from .loading import get_cfg, load_cfg_file
from .method import METHODS, Method, get_method, method_of_engine, register_method

__all__ = [
    "METHODS",
    "CfgNode",
    "ConfigError",
    "Method",
    "get_cfg",
    "get_method",
    "load_cfg_file",
    "merge_missing",
    "method_of_engine",
    "register_method",
    "register_renamed_key",
]
