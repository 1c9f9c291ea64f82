"""Registry look-up with an error that names the config key and the registered choices, and
the names renamed since an earlier release (old configs and saved ``config.yaml`` files keep
working, with a warning)."""

from __future__ import annotations

import logging

from fvcore.common.registry import Registry

from ..errors import ConfigError

#: (registry name, old name) -> new name
_RENAMED: dict[tuple[str, str], str] = {}


def register_renamed(registry: Registry, old: str, new: str) -> None:
    """Look ``old`` up as ``new`` in ``registry`` (a renamed class)."""
    _RENAMED[(registry._name, old)] = new


def lookup(registry: Registry, name: str, cfg_key: str):
    """``registry.get(name)``; raises :class:`ConfigError` naming ``cfg_key`` and the choices."""
    new = _RENAMED.get((registry._name, name))
    if new is not None and name not in registry:
        logging.getLogger("dgnet_plugin").warning(
            "%s '%s' was renamed '%s'; using it (update the config)", cfg_key, name, new
        )
        name = new
    if name not in registry:
        names = ", ".join(sorted(k for k, _ in registry))
        raise ConfigError(f"{cfg_key} '{name}' is not registered; choose one of: {names}")
    return registry.get(name)
