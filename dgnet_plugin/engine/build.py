"""ENGINE registry."""

from __future__ import annotations

from fvcore.common.registry import Registry

from ..utils.registry import lookup

ENGINE_REGISTRY = Registry("ENGINE")
ENGINE_REGISTRY.__doc__ = "Training engines, built as ``cls(cfg)``; selected by ``ENGINE.NAME``."


def build_engine(cfg):
    return lookup(ENGINE_REGISTRY, cfg.ENGINE.NAME, "ENGINE.NAME")(cfg)
