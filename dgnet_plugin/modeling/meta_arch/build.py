"""META_ARCH registry: whole models selected by ``MODEL.META_ARCHITECTURE``."""

from __future__ import annotations

from fvcore.common.registry import Registry

from ...utils.registry import lookup

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Whole models, built as ``cls.from_config(cfg, num_classes)``. A meta-architecture declares
what it provides in the class attribute ``PROVIDES`` (e.g. ``("reid", "gen", "dis")``), which
engines check against their ``REQUIRES`` at build time. One that provides ``"reid"`` exposes
the re-ID network it evaluates as ``.reid`` (the model itself for a plain re-ID baseline); a
pure generator stage provides none and is trained without evaluation.
"""


def build_model(cfg, num_classes: int):
    """The model named by ``cfg.MODEL.META_ARCHITECTURE`` for ``num_classes`` train identities."""
    arch = lookup(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, "MODEL.META_ARCHITECTURE")
    return arch.from_config(cfg, num_classes)


def build_reid_model(cfg, num_classes: int):
    """Only the re-ID network of ``cfg`` (what evaluation and export need)."""
    return build_model(cfg, num_classes).reid
