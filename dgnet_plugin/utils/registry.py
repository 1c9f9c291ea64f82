"""Registry look-up with an error that names the config key and the registered choices."""

from __future__ import annotations

from fvcore.common.registry import Registry

from ..config.config import ConfigError


def lookup(registry: Registry, name: str, cfg_key: str):
    """``registry.get(name)``; raises :class:`ConfigError` naming ``cfg_key`` and the choices."""
    if name not in registry:
        names = ", ".join(sorted(k for k, _ in registry))
        raise ConfigError(f"{cfg_key} '{name}' is not registered; choose one of: {names}")
    return registry.get(name)
