"""What every generation tool needs: the three calls into a DG-Net, image lists, the loader.

A "DG-Net-like" model is anything with ``reid(x, return_all=True)["code"]`` (the appearance
code ``f``, ``(N, D)``), ``gen.encode(x)`` (the structure code ``s``, ``(N, C, h, w)``) and
``gen.decode(s, f)`` (an image ``(N, 3, H, W)``), all on ImageNet-normalised images. Tests
inject a generator whose output is known through the same interface.
"""

from __future__ import annotations

import torch


def appearance_codes(model, x: torch.Tensor) -> torch.Tensor:
    """``Ea``: ImageNet-normalised ``(N, 3, H, W)`` -> appearance codes ``(N, D)``."""
    return model.reid(x, return_all=True)["code"]


def structure_codes(model, x: torch.Tensor) -> torch.Tensor:
    """``Es``: ImageNet-normalised ``(N, 3, H, W)`` -> structure codes ``(N, C, h, w)``."""
    return model.gen.encode(x)


def decode(model, s: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``G(s, f)``: ``(N, C, h, w)`` and ``(N, D)`` -> ImageNet-normalised ``(N, 3, H, W)``."""
    return model.gen.decode(s, f)


def model_device(model) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    params = model.parameters() if hasattr(model, "parameters") else iter(())
    p = next(params, None)
    return p.device if p is not None else torch.device("cpu")


def load_dgnet(config_file: str, weights: str, device="auto", opts=None):
    """Build ``DGNet`` from ``config_file`` and load a checkpoint of ``tools/train_net.py``
    (a path, ``zoo://NAME`` or a URL, as ``MODEL.WEIGHTS``) with
    :func:`~dgnet_plugin.engine.loading.load_model`. Returns ``(model in eval mode on device,
    cfg)``.

    Raises:
        CheckpointError: ``weights`` is missing, unreadable or does not fit the config.
        ConfigError: the config's meta-architecture has no generator.
    """
    from ....config import ConfigError
    from ....engine.loading import load_model

    model, cfg = load_model(config_file, weights, device, opts)
    if not (hasattr(model, "gen") and hasattr(model, "reid")):
        raise ConfigError(
            f"{config_file}: MODEL.META_ARCHITECTURE '{cfg.MODEL.META_ARCHITECTURE}' has no "
            "generator; pass the DG-Net config the checkpoint was trained with"
        )
    return model, cfg
