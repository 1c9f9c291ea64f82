"""``get_cfg`` and ``load_cfg_file``: the core defaults, plus the keys of a method, plus a
YAML file and ``KEY VALUE`` overrides."""

from __future__ import annotations

import yaml

from ..model_zoo.configs import resolve_config_file
from .config import CfgNode, ConfigError
from .defaults import _C
from .method import METHODS, get_method, method_of_engine

__all__ = ["engine_name_of", "get_cfg", "load_cfg_file"]


def get_cfg(method: str | None = None) -> CfgNode:
    """A fresh copy of the core defaults, plus the keys of ``method`` (a registered method
    name such as ``"dgnet"`` or ``"ide"``) when given.

    Raises:
        ConfigError: ``method`` is not registered.
    """
    cfg = _C.clone()
    if method:
        get_method(method).add_config(cfg)
    return cfg


def engine_name_of(path: str, opts: list | None = None) -> str:
    """``ENGINE.NAME`` of a config file (``_BASE_`` resolved) or of its overrides."""
    opts = list(opts or [])
    for i in range(0, len(opts) - 1, 2):
        if opts[i] == "ENGINE.NAME":
            return str(opts[i + 1])
    path = resolve_config_file(path)
    try:
        loaded = CfgNode.load_yaml_with_base(path)
    except (yaml.YAMLError, OSError, KeyError, AssertionError) as e:
        raise ConfigError(f"{path}: cannot read it as a YAML config: {e}") from None
    return str((loaded.get("ENGINE") or {}).get("NAME", ""))


def load_cfg_file(path: str, opts: list | None = None, freeze: bool = True) -> CfgNode:
    """The config of ``path`` (a YAML file, or the name of a packaged config:
    :func:`dgnet_plugin.model_zoo.get_config_file`): the core defaults, the keys of the method
    whose engine ``ENGINE.NAME`` names (see :mod:`.method`), the YAML file (``_BASE_``
    resolved), then the ``KEY VALUE`` overrides.

    Raises:
        ConfigError: missing file, unknown or empty ``ENGINE.NAME``, unknown key, bad value.
    """
    path = resolve_config_file(path)
    cfg = get_cfg()
    method_of_engine(engine_name_of(path, opts), source=path).add_config(cfg)
    union = get_cfg()
    for m in METHODS.values():
        m.add_config(union)
    cfg.merge_from_file(path, other_methods_keys=union)
    cfg.merge_from_list(list(opts or []))
    if freeze:
        cfg.freeze()
    return cfg
