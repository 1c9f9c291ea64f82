"""BACKBONE registry and the shared ImageNet-weights loader."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch
from fvcore.common.registry import Registry

from ...errors import UserError, describe_load_error
from ...utils.registry import lookup

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Backbones of re-ID models. A registered object is called as ``fn(last_stride=, pretrained=,
pretrain_path=)`` and returns an ``nn.Module`` mapping an ImageNet-normalised
``(N, 3, H, W)`` batch to a ``(N, C, h, w)`` feature map, with ``C`` in ``module.out_channels``.
"""

logger = logging.getLogger(__name__)


class PretrainedWeightsError(UserError, RuntimeError):
    """ImageNet weights could neither be read from ``PRETRAIN_PATH`` nor downloaded."""


def build_backbone(cfg) -> torch.nn.Module:
    """Build ``cfg.MODEL.BACKBONE.NAME`` with its last stride and ImageNet weights."""
    bcfg = cfg.MODEL.BACKBONE
    return lookup(BACKBONE_REGISTRY, bcfg.NAME, "MODEL.BACKBONE.NAME")(
        last_stride=bcfg.LAST_STRIDE, pretrained=bcfg.PRETRAIN, pretrain_path=bcfg.PRETRAIN_PATH
    )


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
