"""Discriminators: the MUNIT/DG-Net multi-scale discriminator, CycleGAN's 70x70 PatchGAN and
the DCGAN discriminator (LSRO) and PN-GAN's released patch discriminator."""

from .build import DISCRIMINATOR_REGISTRY, build_discriminator
from .dcgan import DCGANDiscriminator
from .multiscale import MultiScaleDiscriminator
from .patchgan import PatchGANDiscriminator, patchgan_receptive_field
from .pngan import PNGANPatchDiscriminator

__all__ = [
    "DCGANDiscriminator",
    "DISCRIMINATOR_REGISTRY",
    "MultiScaleDiscriminator",
    "PNGANPatchDiscriminator",
    "PatchGANDiscriminator",
    "build_discriminator",
    "patchgan_receptive_field",
]
