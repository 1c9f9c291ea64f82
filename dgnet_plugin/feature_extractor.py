"""``dgnet_plugin.FeatureExtractor``: image paths or PIL images -> re-ID test features.

    import dgnet_plugin

    extractor = dgnet_plugin.FeatureExtractor("output/market1501/dgnet_r50/model_final.pth")
    feats = extractor(["a.jpg", "b.jpg"])  # (2, 1024): [l2norm(f_prim), l2norm(f_fine)]
    sim = feats @ feats.t()  # cosine similarity (TEST.ALPHA weighting is the caller's choice)

The features are exactly the evaluation's (:func:`dgnet_plugin.evaluation.extract_features`:
test transform, per-part L2 normalisation, flip averaging with ``TEST.FLIP``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from .config import get_cfg, load_cfg_file
from .data.datasets import read_image
from .data.transforms import build_transforms
from .engine.loading import local_weights, num_classes_of, read_weights_file
from .evaluation.features import extract_features
from .modeling import build_reid_model

#: The method whose defaults describe a weights file that comes without a config (an export
#: of ``tools/export.py`` with no ``config.yaml`` beside it): DG-Net's Ea, ResNet-50, 256x128.
DEFAULT_METHOD = "dgnet"


def reid_state_dict(data: dict, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The re-ID network's weights inside a loaded file.

    Accepts a dgnet_plugin checkpoint (``{"model": state_dict, ...}``; for DG-Net the
    ``reid.`` part, prefix stripped; for a plain re-ID model such as the IDE teacher, all of
    it), an exported plain ``{key: tensor}`` dict (``tools/export.py``) or a torchreid-style
    ``{"state_dict": ...}`` (a DataParallel ``module.`` prefix is removed).
    """
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        sd = data["model"]
    elif isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        sd = data["state_dict"]
    else:
        sd = data
    if (
        not isinstance(sd, dict)
        or not sd
        or not all(isinstance(v, torch.Tensor) for v in sd.values())
    ):
        raise ValueError(
            f"'{source}' holds no state dict of tensors; expected a dgnet_plugin checkpoint "
            "(tools/train_net.py, a converter) or a tools/export.py file"
        )
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    if any(k.startswith("reid.") for k in sd):
        sd = {k[len("reid.") :]: v for k, v in sd.items() if k.startswith("reid.")}
    return dict(sd)


def reid_config(weights: str, config_file: str | None = None):
    """``config_file``, else the ``config.yaml`` next to ``weights`` (written by training and
    by the converter), else the defaults of :data:`DEFAULT_METHOD`."""
    if config_file:
        cfg = load_cfg_file(config_file, freeze=False)
    else:
        saved = os.path.join(os.path.dirname(os.path.abspath(weights)), "config.yaml")
        if os.path.isfile(saved):
            cfg = load_cfg_file(saved, freeze=False)
        else:
            cfg = get_cfg(DEFAULT_METHOD)
    cfg.MODEL.BACKBONE.PRETRAIN = False  # every weight comes from the checkpoint
    return cfg


def load_reid_model(weights: str, config_file: str | None = None, device="cpu"):
    """Build the re-ID network of the config (see :func:`reid_config`) with the number of
    identities of ``weights`` (a path, ``zoo://NAME`` or a URL) and load them strictly.
    Returns ``(model in eval mode, cfg)``.

    Raises ``FileNotFoundError`` (no file) or ``ValueError`` naming the file, the config and
    the first mismatching keys.
    """
    weights = local_weights(weights)  # zoo://NAME or a URL: downloaded
    expected = "a checkpoint of tools/train_net.py or a file of tools/export.py"
    sd = reid_state_dict(read_weights_file(weights, expected), weights)
    num_classes = num_classes_of(sd, weights)
    cfg = reid_config(weights, config_file)
    model = build_reid_model(cfg, num_classes)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        where = config_file or "config.yaml next to the weights, else the package defaults"
        raise ValueError(
            f"'{weights}' does not fit the {cfg.MODEL.META_ARCHITECTURE} "
            f"({cfg.MODEL.BACKBONE.NAME}) of {where}; pass the config the weights were "
            f"trained with (config_file=...). {str(e)[:600]}"
        ) from None
    return model.to(device).eval(), cfg


def _as_list(images) -> list:
    if isinstance(images, str | os.PathLike | Image.Image | np.ndarray):
        return [images]
    return list(images)


def _to_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):  # (H, W, 3) uint8 RGB
        return Image.fromarray(image).convert("RGB")
    if isinstance(image, str | os.PathLike):
        return read_image(os.fspath(image))
    raise TypeError(
        f"expected an image path, a PIL image or an (H, W, 3) uint8 array, got {type(image)}"
    )


class FeatureExtractor:
    """Re-ID features of images, as the evaluation computes them.

    Args:
        weights: a dgnet_plugin checkpoint (DG-Net or a plain re-ID model such as the IDE
            teacher) or a ``tools/export.py`` state dict.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or a ``torch.device``.
        config_file: the config the weights were trained with; default: ``config.yaml`` next
            to ``weights``, else the DG-Net ResNet-50 defaults (256x128).
        batch_size: images per forward pass.

    ``extractor(images)`` takes one or a list of image paths / PIL images / ``(H, W, 3)``
    uint8 RGB arrays and returns a float32 CPU tensor ``(N, D)`` (DG-Net: ``D = 1024``, each
    512-d half L2-normalised; the IDE teacher: ``D = 512``).
    """

    def __init__(self, weights: str, device="cpu", config_file: str | None = None, batch_size=64):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.model, self.cfg = load_reid_model(weights, config_file, self.device)
        self.transform = build_transforms(self.cfg, is_train=False)
        self.batch_size = int(batch_size)
        self.flip = bool(self.cfg.TEST.FLIP)

    @property
    def feature_parts(self) -> tuple[int, ...]:
        """Sizes of the separately normalised parts of a feature (DG-Net: ``(512, 512)``)."""
        return tuple(self.model.feature_parts)

    def _batches(self, items: list) -> Iterator[dict]:
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            imgs = torch.stack([self.transform(_to_pil(x)) for x in chunk])
            n = len(chunk)
            yield {"img": imgs, "pid": np.full(n, -1), "camid": np.full(n, -1)}

    def __call__(self, images: Iterable | str | Image.Image) -> torch.Tensor:
        items = _as_list(images)
        if not items:
            raise ValueError("FeatureExtractor got no images")
        feats, _, _ = extract_features(
            self.model, self._batches(items), self.device, flip=self.flip, desc="features"
        )
        return feats


__all__ = ["FeatureExtractor", "load_reid_model", "reid_config", "reid_state_dict"]
