"""Re-ID backbones: ``build_backbone(cfg)`` -> image-to-feature-map module with ``out_channels``."""

from .build import BACKBONE_REGISTRY, adapt_first_conv, build_backbone
from .mobilenetv2 import mobilenetv2
from .resnet import resnet50

__all__ = [
    "BACKBONE_REGISTRY",
    "adapt_first_conv",
    "build_backbone",
    "mobilenetv2",
    "resnet50",
]
