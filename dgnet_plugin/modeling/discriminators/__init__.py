"""Discriminators: the MUNIT/DG-Net multi-scale discriminator and CycleGAN's 70x70
PatchGAN."""

from .build import DISCRIMINATOR_REGISTRY, build_discriminator
from .multiscale import MultiScaleDiscriminator
from .patchgan import PatchGANDiscriminator, patchgan_receptive_field

__all__ = [
    "DISCRIMINATOR_REGISTRY",
    "MultiScaleDiscriminator",
    "PatchGANDiscriminator",
    "build_discriminator",
    "patchgan_receptive_field",
]
