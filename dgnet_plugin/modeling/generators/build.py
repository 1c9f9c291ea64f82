"""GENERATOR registry."""

from __future__ import annotations

from fvcore.common.registry import Registry
from torch import nn

from ...utils.registry import lookup

GENERATOR_REGISTRY = Registry("GENERATOR")
GENERATOR_REGISTRY.__doc__ = """
Image generators and translators, built as ``cls.from_config(cfg, **kwargs)`` (the keyword
arguments are what the method knows at build time, e.g. DG-Net's appearance-code size).

The contract any translator fits: ``forward(x, *condition) -> image``, ``x`` an image batch
``(N, C_in, H, W)``, ``condition`` optional (a code such as DG-Net's appearance code
``(N, D)``, a target pose map, a domain label), the output ``(N, C_out, H', W')`` in the value
range the method documents (ImageNet-normalised for DG-Net; ``[-1, 1]`` for CycleGAN-style
translators). Channel counts are configuration (1-channel infrared, 3-channel RGB, 4-channel
multi-spectral, image + pose maps). Encoder/decoder generators also expose their halves
(DG-Net: ``encode(x) -> structure code``, ``decode(s, f) -> image``).
"""


def build_generator(cfg, **kwargs) -> nn.Module:
    """The generator named by ``MODEL.GEN.NAME``, built with ``from_config(cfg, **kwargs)``."""
    return lookup(GENERATOR_REGISTRY, cfg.MODEL.GEN.NAME, "MODEL.GEN.NAME").from_config(
        cfg, **kwargs
    )
