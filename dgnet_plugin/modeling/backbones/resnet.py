"""ResNet-50 backbone (torchvision) with a configurable last stride."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .build import BACKBONE_REGISTRY, adapt_first_conv, load_imagenet_state_dict


class ResNet50Backbone(nn.Module):
    """torchvision ResNet-50 up to layer4: ``(N, C, H, W) -> (N, 2048, H/32*s, W/32*s)``
    (``C = in_channels``, 3 by default; see :meth:`set_in_channels`).

    ``last_stride=1`` (DG-Net's ``ID_stride: 1``) keeps layer4 at 1/16 resolution:
    a 256x128 input gives a 2048x16x8 map.
    """

    out_channels = 2048

    def __init__(self, last_stride: int = 1):
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2, got {last_stride}")
        net = torchvision.models.resnet50(weights=None)
        net.layer4[0].conv2.stride = (last_stride, last_stride)
        net.layer4[0].downsample[0].stride = (last_stride, last_stride)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )

    def set_in_channels(self, in_channels: int) -> None:
        """Rebuild ``conv1`` for ``in_channels`` from its RGB weights (:func:`adapt_first_conv`)."""
        self.conv1 = adapt_first_conv(self.conv1, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@BACKBONE_REGISTRY.register()
def resnet50(last_stride=1, pretrained=True, pretrain_path="", in_channels=3) -> ResNet50Backbone:
    """ResNet-50 backbone; ImageNet weights from ``pretrain_path`` or torchvision's download,
    loaded into the RGB ``conv1`` before it is adapted to ``in_channels``."""
    model = ResNet50Backbone(last_stride)
    if pretrained:
        state = load_imagenet_state_dict(
            "resnet50",
            pretrain_path,
            lambda: torchvision.models.ResNet50_Weights.IMAGENET1K_V1.get_state_dict(progress=True),
        )
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=True)
    model.set_in_channels(in_channels)
    return model
