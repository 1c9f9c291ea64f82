"""``get_cfg`` and a ``CfgNode`` whose merge errors name the file and key."""

from __future__ import annotations

import os

from fvcore.common.config import CfgNode as _FvCfgNode


class ConfigError(ValueError):
    """A config file or override could not be merged (unknown key, bad value, missing file)."""


class CfgNode(_FvCfgNode):
    """fvcore ``CfgNode`` (yacs + ``_BASE_``) whose errors name the offending file and key.

    Unknown keys are errors, as in yacs; the message says which file (or command-line
    override) held the key and how to list the valid ones.
    """

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        if not os.path.isfile(cfg_filename):
            raise ConfigError(
                f"config file '{cfg_filename}' does not exist; pass an existing YAML file to "
                "--config-file (the shipped ones are in configs/)"
            )
        try:
            super().merge_from_file(cfg_filename, allow_unsafe=allow_unsafe)
        except KeyError as e:
            raise ConfigError(
                f"{cfg_filename}: {e.args[0] if e.args else e}. Check the spelling against "
                "`python -c 'import dgnet_plugin; print(dgnet_plugin.get_cfg())'`"
            ) from None
        except ValueError as e:
            raise ConfigError(f"{cfg_filename}: {e}") from None

    def merge_from_list(self, cfg_list: list) -> None:
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"command-line overrides must be KEY VALUE pairs, got an odd count: {cfg_list}"
            )
        cfg_list = list(cfg_list)
        for i in range(0, len(cfg_list), 2):
            cfg_list[i + 1] = self._int_to_float(cfg_list[i], cfg_list[i + 1])
        try:
            super().merge_from_list(cfg_list)
        except (KeyError, ValueError, AssertionError) as e:
            raise ConfigError(f"command-line override: {e.args[0] if e.args else e}") from None

    def _int_to_float(self, key: str, value):
        """``LOSS.TEACHER_MAX 0`` means 0.0: an integer given for a float key is converted
        (yacs would reject it); everything else is left to yacs' own checks."""
        node = self
        for part in key.split("."):
            if not isinstance(node, _FvCfgNode) or part not in node:
                return value
            node = node[part]
        if isinstance(node, float) and isinstance(value, str) and value.lstrip("-").isdigit():
            return str(float(value))
        return value


def get_cfg() -> CfgNode:
    """Return a fresh copy of the package defaults (every key any engine reads)."""
    from .defaults import _C

    return _C.clone()


def load_cfg_file(path: str, opts: list | None = None, freeze: bool = True) -> CfgNode:
    """``get_cfg()`` merged with a YAML file (``_BASE_`` resolved) and ``KEY VALUE`` overrides."""
    cfg = get_cfg()
    cfg.merge_from_file(path)
    cfg.merge_from_list(list(opts or []))
    if freeze:
        cfg.freeze()
    return cfg
