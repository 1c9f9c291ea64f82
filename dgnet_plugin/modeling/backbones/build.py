"""BACKBONE registry and the shared ImageNet-weights loader."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch
from fvcore.common.registry import Registry
from torch import nn

from ...errors import UserError, describe_load_error
from ...utils.registry import lookup

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Backbones of re-ID models. A registered object is called as ``fn(last_stride=, pretrained=,
pretrain_path=, in_channels=)`` and returns an ``nn.Module`` mapping a normalised
``(N, in_channels, H, W)`` batch (ImageNet-normalised RGB when ``in_channels=3``) to a
``(N, C, h, w)`` feature map, with ``C`` in ``module.out_channels``. A first convolution for
``in_channels != 3`` is derived from the RGB one with :func:`adapt_first_conv`.
"""

logger = logging.getLogger(__name__)


class PretrainedWeightsError(UserError, RuntimeError):
    """ImageNet weights could neither be read from ``PRETRAIN_PATH`` nor downloaded."""


def build_backbone(cfg) -> torch.nn.Module:
    """Build ``cfg.MODEL.BACKBONE.NAME`` with its last stride, input channels
    (``MODEL.BACKBONE.IN_CHANNELS``) and ImageNet weights."""
    bcfg = cfg.MODEL.BACKBONE
    return lookup(BACKBONE_REGISTRY, bcfg.NAME, "MODEL.BACKBONE.NAME")(
        last_stride=bcfg.LAST_STRIDE,
        pretrained=bcfg.PRETRAIN,
        pretrain_path=bcfg.PRETRAIN_PATH,
        in_channels=bcfg.IN_CHANNELS,
    )


def adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """``conv`` (an RGB first convolution, ImageNet or random) rebuilt for ``in_channels``.

    With ``W_c`` the filter of input channel ``c`` and ``W_mean = (W_R + W_G + W_B) / 3``
    (a choice of this package: the D2RL paper does not say how its 4-channel ``conv1`` is
    initialised, and AGW reads infrared as 3 channels): ``in_channels=1`` -> ``[W_mean]``;
    ``in_channels=C > 1`` -> channel ``k < 3`` keeps ``W_k`` and every extra channel
    ``k >= 3`` gets ``W_mean`` (a 4-channel [RGB; IR] input: ``[W_R, W_G, W_B, W_mean]``).
    ``in_channels=3`` returns ``conv`` itself, so 3-channel models keep their modules, weights
    and random draws. Bias, stride, padding and the other settings are copied; the state-dict
    key stays the same (only the weight's
    input dimension changes).
    """
    if in_channels < 1:
        raise ValueError(f"MODEL.BACKBONE.IN_CHANNELS must be >= 1, got {in_channels}")
    if conv.in_channels != 3:
        raise ValueError(f"adapt_first_conv expects an RGB convolution, got {conv.in_channels}")
    if in_channels == 3:
        return conv
    w = conv.weight.detach()
    mean = w.mean(dim=1, keepdim=True)
    if in_channels == 1:
        new_w = mean
    else:
        new_w = torch.cat(
            [w[:, : min(in_channels, 3)], mean.expand(-1, max(in_channels - 3, 0), -1, -1)], 1
        )
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
        device=w.device,
        dtype=w.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(new_w)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def load_imagenet_state_dict(
    name: str, pretrain_path: str, download: Callable[[], dict]
) -> dict[str, torch.Tensor]:
    """ImageNet weights from ``pretrain_path`` when given, else from ``download()``.

    Raises:
        FileNotFoundError: ``pretrain_path`` is set but is not a file.
        PretrainedWeightsError: nothing local and the download failed (offline machine).
    """
    if pretrain_path:
        if not os.path.isfile(pretrain_path):
            raise FileNotFoundError(
                f"MODEL.BACKBONE.PRETRAIN_PATH '{pretrain_path}' does not exist; point it at a "
                f"local ImageNet checkpoint for {name} or set MODEL.BACKBONE.PRETRAIN False"
            )
        logger.info("Loading ImageNet weights for %s from %s", name, pretrain_path)
        try:
            state = torch.load(pretrain_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise PretrainedWeightsError(
                f"MODEL.BACKBONE.PRETRAIN_PATH '{pretrain_path}' is not a torch checkpoint of "
                f"ImageNet weights ({describe_load_error(e)}); point it at one for {name}"
            ) from None
        if not isinstance(state, dict):
            raise PretrainedWeightsError(
                f"MODEL.BACKBONE.PRETRAIN_PATH '{pretrain_path}' holds a {type(state).__name__}, "
                f"not a state dict of {name} weights"
            )
        if "state_dict" in state:
            state = state["state_dict"]
        return state
    try:
        return download()
    except Exception as e:  # offline, proxy, HTTP error: all surface the same way
        raise PretrainedWeightsError(
            f"could not download the ImageNet weights of {name} ({type(e).__name__}: {e}). "
            "Set MODEL.BACKBONE.PRETRAIN_PATH to a local file, or MODEL.BACKBONE.PRETRAIN False "
            "to start from random weights"
        ) from e
