"""MobileNetV2 backbone (torchvision), the light option for CPU runs."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .build import BACKBONE_REGISTRY, adapt_first_conv, load_imagenet_state_dict


class MobileNetV2Backbone(nn.Module):
    """torchvision ``mobilenet_v2().features``: ``(N, C, H, W) -> (N, 1280, H/32*s, W/32*s)``
    (``C = in_channels``, 3 by default; see :meth:`set_in_channels`).

    ``last_stride=1`` sets the stride of the last stride-2 stage (``features[14]``) to 1.
    """

    out_channels = 1280

    def __init__(self, last_stride: int = 1):
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2, got {last_stride}")
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        self.features[14].conv[1][0].stride = (last_stride, last_stride)

    def set_in_channels(self, in_channels: int) -> None:
        """Rebuild the first convolution for ``in_channels`` from its RGB weights
        (:func:`adapt_first_conv`)."""
        self.features[0][0] = adapt_first_conv(self.features[0][0], in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def remap_positional(state: dict, target: dict, source_name: str) -> dict:
    """Map ``state`` onto ``target``'s keys by position, checking every shape.

    Used for MobileNetV2 checkpoints in the flat-Sequential naming
    (``features.1.conv.0.weight``), whose tensors follow torchvision's order one to one.
    """
    src, dst = list(state.items()), list(target.items())
    if len(src) != len(dst):
        raise ValueError(
            f"{source_name}: {len(src)} tensors, but mobilenetv2 features have {len(dst)}; "
            "is this an ImageNet MobileNetV2 (width 1.0) checkpoint?"
        )
    out = {}
    for (sk, sv), (dk, dv) in zip(src, dst):
        if tuple(sv.shape) != tuple(dv.shape):
            raise ValueError(
                f"{source_name}: tensor '{sk}' has shape {tuple(sv.shape)} but position maps it "
                f"to '{dk}' of shape {tuple(dv.shape)}"
            )
        out[dk] = sv
    return out


@BACKBONE_REGISTRY.register()
def mobilenetv2(
    last_stride=1, pretrained=True, pretrain_path="", in_channels=3
) -> MobileNetV2Backbone:
    """MobileNetV2 backbone; ImageNet weights from ``pretrain_path`` (torchvision or
    flat-Sequential key names) or torchvision's download, loaded into the RGB first
    convolution before it is adapted to ``in_channels``."""
    model = MobileNetV2Backbone(last_stride)
    if pretrained:

        def download():
            weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
            return weights.get_state_dict(progress=True)

        state = load_imagenet_state_dict("mobilenetv2", pretrain_path, download)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        target = model.features.state_dict()
        prefixed = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        if set(prefixed) == set(target):
            model.features.load_state_dict(prefixed, strict=True)
        else:
            src = prefixed or state
            model.features.load_state_dict(
                remap_positional(src, target, pretrain_path or "download"), strict=True
            )
    model.set_in_channels(in_channels)
    return model
