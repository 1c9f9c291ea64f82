"""Generators: structure encoder Es + decoder G with AdaIN from the appearance code."""

from .adain_gen import GENERATOR_REGISTRY, AdaINGen, Decoder, StructureEncoder, build_generator

__all__ = ["GENERATOR_REGISTRY", "AdaINGen", "Decoder", "StructureEncoder", "build_generator"]
