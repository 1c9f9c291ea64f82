"""What every generation tool needs: the three calls into a DG-Net, image lists, the loader.

A "DG-Net-like" model is anything with ``reid(x, return_all=True)["code"]`` (the appearance
code ``f``, ``(N, D)``), ``gen.encode(x)`` (the structure code ``s``, ``(N, C, h, w)``) and
``gen.decode(s, f)`` (an image ``(N, 3, H, W)``), all on ImageNet-normalised images. Tests
inject a generator whose output is known through the same interface.
"""

from __future__ import annotations

import glob
import os

import torch

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp")


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


def list_images(sources) -> list[str]:
    """Image paths from a folder (its ``.jpg/.jpeg/.png/.bmp`` files, sorted) or a list of
    folders and files, in the given order.

    Raises:
        FileNotFoundError: a path does not exist, or a folder holds no image.
    """
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    paths: list[str] = []
    for src in map(str, sources):
        if os.path.isdir(src):
            found = sorted(
                p for ext in IMAGE_EXTENSIONS for p in glob.glob(os.path.join(src, f"*.{ext}"))
            )
            if not found:
                raise FileNotFoundError(
                    f"no .jpg/.jpeg/.png/.bmp image in folder '{src}'; pass a folder of images "
                    "or image files"
                )
            paths += found
        elif os.path.isfile(src):
            paths.append(src)
        else:
            raise FileNotFoundError(f"image or folder '{src}' does not exist")
    return paths


def load_images(paths, transform) -> torch.Tensor:
    """Read ``paths`` as RGB and stack ``transform(img)`` (for DG-Net: the test transform,
    giving ImageNet-normalised ``(3, H, W)``) into ``(N, 3, H, W)``."""
    from ..data import read_image

    return torch.stack([transform(read_image(str(p))) for p in paths])


def load_dgnet(config_file: str, weights: str, device="auto", opts=None):
    """Build ``DGNet`` from ``config_file`` and load a checkpoint of ``tools/train_net.py``
    (a path, ``zoo://NAME`` or a URL, as ``MODEL.WEIGHTS``).

    The backbone is not initialised from ImageNet (``MODEL.BACKBONE.PRETRAIN False``): every
    weight comes from ``weights``. The number of identities is read from the checkpoint
    (``reid.classifier.classifier.weight``). Returns ``(model in eval mode on device, cfg)``.

    Raises:
        CheckpointError: ``weights`` is missing, unreadable or does not fit the config.
        ConfigError: the config is not a DG-Net config.
    """
    from ..config import ConfigError, load_cfg_file
    from ..engine.base import resolve_device
    from ..model_zoo import resolve_weights
    from ..modeling import build_model
    from ..utils.checkpoint import Checkpointer, CheckpointError

    cfg = load_cfg_file(config_file, list(opts or []), freeze=False)
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.freeze()
    if weights and not os.path.isfile(weights):
        weights = resolve_weights(weights)  # zoo://NAME or a URL: downloaded into the cache
    if not weights or not os.path.isfile(weights):
        raise CheckpointError(
            f"checkpoint '{weights}' does not exist; pass --weights OUTPUT_DIR/model_final.pth "
            "written by tools/train_net.py"
        )
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint '{weights}': {e}") from e
    key = "reid.classifier.classifier.weight"
    if not isinstance(state, dict) or key not in state.get("model", {}):
        raise CheckpointError(
            f"'{weights}' is not a DG-Net checkpoint of tools/train_net.py (no '{key}'); pass "
            "the model_final.pth of a DG-Net run"
        )
    num_classes = state["model"][key].shape[0]
    del state
    model = build_model(cfg, num_classes)
    if not (hasattr(model, "gen") and hasattr(model, "reid")):
        raise ConfigError(
            f"{config_file}: MODEL.META_ARCHITECTURE '{cfg.MODEL.META_ARCHITECTURE}' has no "
            "generator; pass the DG-Net config the checkpoint was trained with"
        )
    Checkpointer(model).load(weights, checkpointables=[])
    return model.to(resolve_device(device)).eval(), cfg
