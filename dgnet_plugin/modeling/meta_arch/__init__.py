"""Meta-architectures: the re-ID models (Ea, the IDE teacher) and DG-Net as a whole."""

from .build import META_ARCH_REGISTRY, build_model, build_reid_model
from .dgnet import DGNet
from .reid import AppearanceEncoder, IDEBaseline

__all__ = [
    "META_ARCH_REGISTRY",
    "AppearanceEncoder",
    "DGNet",
    "IDEBaseline",
    "build_model",
    "build_reid_model",
]
