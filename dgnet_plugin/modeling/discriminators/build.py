"""DISCRIMINATOR registry."""

from __future__ import annotations

from fvcore.common.registry import Registry
from torch import nn

from ...utils.registry import lookup

DISCRIMINATOR_REGISTRY = Registry("DISCRIMINATOR")
DISCRIMINATOR_REGISTRY.__doc__ = """
Discriminators, built as ``cls.from_config(cfg, in_channels)``; ``forward(x)`` with ``x``
``(N, in_channels, H, W)`` returns a list of patch score maps ``(N, 1, h_s, w_s)``, one per
scale (a single-scale PatchGAN returns a list of one).
"""


def build_discriminator(cfg, in_channels: int = 3) -> nn.Module:
    """The discriminator named by ``MODEL.DIS.NAME`` for ``in_channels``-channel images."""
    name = cfg.MODEL.DIS.NAME
    return lookup(DISCRIMINATOR_REGISTRY, name, "MODEL.DIS.NAME").from_config(cfg, in_channels)
