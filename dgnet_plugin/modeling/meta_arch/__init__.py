"""META_ARCH registry: whole models, registered by the method packages (and by the
offline-augmentation family: CycleGAN)."""

from .build import META_ARCH_REGISTRY, build_model, build_reid_model

__all__ = ["META_ARCH_REGISTRY", "build_model", "build_reid_model"]
