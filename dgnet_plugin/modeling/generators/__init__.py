"""Generators and translators (image -> image, optionally conditioned); the implementations
are registered by the method packages and by shared modules here (``unit``: UNIT's coupled
VAE-GAN translator)."""

from . import unit  # noqa: F401 (registers UNITTranslator)
from .build import GENERATOR_REGISTRY, build_generator
from .unit import UNITTranslator

__all__ = ["GENERATOR_REGISTRY", "UNITTranslator", "build_generator"]
