"""ENGINE registry."""

from __future__ import annotations

from fvcore.common.registry import Registry

from ..utils.registry import lookup

ENGINE_REGISTRY = Registry("ENGINE")
ENGINE_REGISTRY.__doc__ = """
Training engines (subclasses of :class:`~dgnet_plugin.engine.defaults.IterationTrainer`),
built as ``cls(cfg)``; selected by ``ENGINE.NAME``. Each belongs to a method package
(:class:`~dgnet_plugin.config.method.Method`), whose config keys the loader adds.
"""


def build_engine(cfg):
    """The engine named by ``ENGINE.NAME``, built from ``cfg``."""
    return lookup(ENGINE_REGISTRY, cfg.ENGINE.NAME, "ENGINE.NAME")(cfg)
