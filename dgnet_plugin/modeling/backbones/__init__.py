"""Re-ID backbones: ``build_backbone(cfg)`` -> image-to-feature-map module with ``out_channels``."""

from .build import BACKBONE_REGISTRY, build_backbone
from .mobilenetv2 import mobilenetv2
from .resnet import resnet50

__all__ = [
    "BACKBONE_REGISTRY",
    "build_backbone",
    "mobilenetv2",
    "resnet50",
]
