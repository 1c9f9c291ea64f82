"""Generators and translators (image -> image, optionally conditioned); the implementations
are registered by the method packages and by shared modules here (``unit``: UNIT's coupled
VAE-GAN translator)."""

from . import unit  # noqa: F401 (registers UNITTranslator)
from .build import GENERATOR_REGISTRY, build_generator
from .dcgan import DCGANGenerator
from .resnet import ResnetGenerator
from .unit import UNITTranslator

__all__ = [
    "DCGANGenerator",
    "GENERATOR_REGISTRY",
    "ResnetGenerator",
    "UNITTranslator",
    "build_generator",
]
