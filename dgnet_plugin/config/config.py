"""A ``CfgNode`` whose merge errors name the file and key; renamed keys; ``merge_missing``.

The defaults (:mod:`.defaults`) and the loaders (:mod:`.loading`: ``get_cfg``,
``load_cfg_file``) build on it; it imports neither."""

from __future__ import annotations

import logging

from fvcore.common.config import CfgNode as _FvCfgNode

from ..errors import ConfigError  # re-exported: dgnet_plugin.config.ConfigError
from ..model_zoo.configs import resolve_config_file

__all__ = ["CfgNode", "ConfigError", "merge_missing", "register_renamed_key"]

#: Keys renamed since an earlier release: old full key -> new full key. A config (or a saved
#: ``config.yaml``) that still uses the old name is merged into the new key with a warning.
RENAMED_KEYS: dict[str, str] = {}


def _drop_foreign(loaded: dict, own, union, prefix: str = "") -> list[str]:
    """Remove from ``loaded`` (in place) the keys that ``own`` lacks but ``union`` has;
    returns their full names."""
    dropped = []
    for k in list(loaded):
        if k not in own:
            if k in union:
                del loaded[k]
                dropped.append(prefix + k)
        elif isinstance(loaded[k], dict) and isinstance(own[k], _FvCfgNode) and k in union:
            dropped += _drop_foreign(loaded[k], own[k], union[k], f"{prefix}{k}.")
    return dropped


def register_renamed_key(old: str, new: str) -> None:
    """``old`` (e.g. ``"LOSS.PID"``) now reads as ``new`` (e.g. ``"LOSS.ID_POS"``)."""
    RENAMED_KEYS[old] = new


def _rename_in_dict(data: dict, source: str) -> dict:
    """``data`` (a loaded YAML dict) with the :data:`RENAMED_KEYS` moved to their new names."""
    for old, new in RENAMED_KEYS.items():
        *path, leaf = old.split(".")
        node = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        *new_path, new_leaf = new.split(".")
        dst = data
        for part in new_path:
            dst = dst.setdefault(part, {})
        dst[new_leaf] = value
        logging.getLogger("dgnet_plugin").warning(
            "%s: %s was renamed %s; read as %s (update the config)", source, old, new, new
        )
    return data


class CfgNode(_FvCfgNode):
    """fvcore ``CfgNode`` (yacs + ``_BASE_``) whose errors name the offending file and key.

    Unknown keys are errors, as in yacs; the message says which file (or command-line
    override) held the key and how to list the valid ones.
    """

    def merge_from_file(
        self, cfg_filename: str, allow_unsafe: bool = False, other_methods_keys=None
    ) -> None:
        """Merge a YAML file (``_BASE_`` resolved; renamed keys read as their new names).

        ``other_methods_keys``: a ``CfgNode`` holding the keys of every registered method;
        a key of the file that ``self`` lacks but that node has (a key of another method, as
        in a ``config.yaml`` saved before the method-package move, when every method's keys
        were package defaults) is dropped with a warning instead of being an error.
        """
        cfg_filename = resolve_config_file(cfg_filename)
        try:
            loaded = self.load_yaml_with_base(cfg_filename, allow_unsafe=allow_unsafe)
            loaded = _rename_in_dict(loaded, cfg_filename)
            dropped = _drop_foreign(loaded, self, other_methods_keys or {})
            if dropped:
                logging.getLogger("dgnet_plugin").warning(
                    "%s: keys of another method ignored: %s", cfg_filename, ", ".join(dropped)
                )
            self.merge_from_other_cfg(type(self)(loaded))
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
            if cfg_list[i] in RENAMED_KEYS:
                logging.getLogger("dgnet_plugin").warning(
                    "override %s was renamed %s", cfg_list[i], RENAMED_KEYS[cfg_list[i]]
                )
                cfg_list[i] = RENAMED_KEYS[cfg_list[i]]
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


def merge_missing(dst: CfgNode, src: CfgNode) -> CfgNode:
    """Add to ``dst`` every key of ``src`` (with its value) that ``dst`` does not have yet;
    keys ``dst`` has are left as they are. What each ``add_<method>_config`` uses."""
    for k, v in src.items():
        if k not in dst:
            dst[k] = v.clone() if isinstance(v, CfgNode) else v
        elif isinstance(v, CfgNode) and isinstance(dst[k], CfgNode):
            merge_missing(dst[k], v)
    return dst
