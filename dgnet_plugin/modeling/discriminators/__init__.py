"""Discriminators: the MUNIT/DG-Net multi-scale discriminator (CycleGAN's 70x70 PatchGAN
will sit beside it)."""

from .build import DISCRIMINATOR_REGISTRY, build_discriminator
from .dcgan import DCGANDiscriminator
from .multiscale import MultiScaleDiscriminator

__all__ = [
    "DCGANDiscriminator",
    "DISCRIMINATOR_REGISTRY",
    "MultiScaleDiscriminator",
    "build_discriminator",
]
