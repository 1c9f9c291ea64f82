"""Discriminators (multi-scale PatchGAN)."""

from .patchgan import DISCRIMINATOR_REGISTRY, MultiScalePatchGAN, build_discriminator

__all__ = ["DISCRIMINATOR_REGISTRY", "MultiScalePatchGAN", "build_discriminator"]
