"""META_ARCH registry: whole models, registered by the method packages (and CycleGAN, shared
by the offline translation methods)."""

from .build import META_ARCH_REGISTRY, build_model, build_reid_model
from .cyclegan import CycleGAN

__all__ = ["META_ARCH_REGISTRY", "CycleGAN", "build_model", "build_reid_model"]
