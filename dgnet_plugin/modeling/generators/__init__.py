"""Generators and translators (image -> image, optionally conditioned); the implementations
are registered by the method packages and by shared modules here."""

from .build import GENERATOR_REGISTRY, build_generator
from .dcgan import DCGANGenerator
from .resnet import ResnetGenerator

__all__ = ["DCGANGenerator", "GENERATOR_REGISTRY", "ResnetGenerator", "build_generator"]
