"""The method registry: what a method package declares so that generic code can use it.

A method (DG-Net, the IDE baseline, ...) is a package under ``dgnet_plugin/methods/`` that
registers one :class:`Method` when it is imported. Generic code reaches a method only through
this record: the config loader adds its keys (``add_config``) when ``ENGINE.NAME`` names one
of its engines, ``tools/train_net.py`` runs its ``before_training`` step, the leaderboard
shows its ``title``, ``tools/generate.py`` offers its ``generation_commands``. The core never
imports a method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError


@dataclass(frozen=True)
class Method:
    """One method package's entry points.

    Attributes:
        name: short name (the package name under ``methods/``), e.g. ``"dgnet"``.
        title: the name in tables (e.g. ``"DG-Net"``).
        add_config: ``add_<name>_config(cfg)``: adds the method's keys with their defaults.
        engines: the ``ENGINE.NAME`` values of its engines (the first is the main one).
        meta_architectures: the ``MODEL.META_ARCHITECTURE`` values it registers.
        before_training: ``f(cfg)`` run by ``tools/train_net.py`` before the engine is built
            (e.g. DG-Net trains its teacher when the weights are missing); ``None``: nothing.
        generation_commands: ``tools/generate.py``'s commands of the method, ``{command:
            (help, add_arguments(parser), run(args, model, cfg))}``.
        config_rules: validation rules of the method's keys (see
            :func:`dgnet_plugin.config.validate.validate_config`), checked before any work.
        stages: ``f(cfg) -> [Stage, ...]`` (:mod:`dgnet_plugin.engine.stages`): the stages
            of an offline pipeline run before the engine (train the translators, generate
            images); ``tools/train_net.py`` runs them in order, ``--stage NAME`` one of them.
            ``None``: the engine's training is the only stage.
        export: ``f(cfg, reid_model) -> (torchreid model name or None, [KEY=value config
            differences the torchreid factory cannot know])`` for ``tools/export.py``;
            ``None``: the method's re-ID network has no torchreid factory.
    """

    name: str
    title: str
    add_config: Callable[[Any], Any]
    engines: tuple[str, ...]
    meta_architectures: tuple[str, ...] = ()
    before_training: Callable[[Any], None] | None = None
    generation_commands: Mapping[str, tuple[str, Callable, Callable]] = field(default_factory=dict)
    export: Callable | None = None
    config_rules: tuple = ()
    stages: Callable[[Any], list] | None = None


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` (idempotent for the same name and engines; a clash raises)."""
    for other in METHODS.values():
        if other.name != method.name and set(other.engines) & set(method.engines):
            raise ValueError(
                f"engines {sorted(set(other.engines) & set(method.engines))} are already "
                f"registered by method '{other.name}'"
            )
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method registered as ``name``. Raises :class:`ConfigError` listing the choices."""
    if name not in METHODS:
        raise ConfigError(f"method '{name}' is not registered; choose one of: {_choices()}")
    return METHODS[name]


def method_of_engine(engine_name: str, source: str = "ENGINE.NAME") -> Method:
    """The method owning the engine ``engine_name``.

    Raises:
        ConfigError: no method registers that engine (``source`` names where the value came
            from, e.g. the config file).
    """
    for m in METHODS.values():
        if engine_name in m.engines:
            return m
    engines = ", ".join(sorted(e for m in METHODS.values() for e in m.engines))
    if not engine_name:
        raise ConfigError(
            f"{source}: ENGINE.NAME is empty; set it to one of: {engines} (or _BASE_ the "
            "config on a shipped one in configs/)"
        )
    raise ConfigError(f"{source}: ENGINE.NAME '{engine_name}' is unknown; choose one of: {engines}")


def method_of_meta_architecture(name: str) -> Method | None:
    """The method that registers ``MODEL.META_ARCHITECTURE`` ``name`` (``None``: none)."""
    return next((m for m in METHODS.values() if name in m.meta_architectures), None)


def _choices() -> str:
    return ", ".join(sorted(METHODS)) or "(none registered: import dgnet_plugin first)"
