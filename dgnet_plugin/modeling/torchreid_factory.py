"""Factories injected into ``torchreid.models.build_model``."""

from __future__ import annotations

from ..config import get_cfg
from ..utils import torchreid_compat as tr
from .meta_arch.reid import AppearanceEncoder, build_appearance_encoder


def _factory(backbone: str):
    def build(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
        """DG-Net's appearance encoder Ea as a torchreid model (``loss='softmax'`` only).

        Training ``forward`` returns ``[logits_prim, logits_fine]``, eval returns the 1024-d
        feature. ``pretrained=True`` loads ImageNet weights (download, or ``pretrain_path=``).
        """
        if loss != "softmax":
            raise ValueError(f"{backbone} Ea supports loss='softmax' only, got loss='{loss}'")
        cfg = get_cfg()
        cfg.MODEL.BACKBONE.NAME = backbone
        cfg.MODEL.BACKBONE.PRETRAIN = bool(pretrained)
        cfg.MODEL.BACKBONE.PRETRAIN_PATH = kwargs.pop("pretrain_path", "")
        if kwargs:
            raise TypeError(f"unexpected arguments for dgnet_{backbone}: {sorted(kwargs)}")
        return build_appearance_encoder(cfg, num_classes)

    return build


TORCHREID_MODELS = {"dgnet_r50": _factory("resnet50"), "dgnet_mobilenetv2": _factory("mobilenetv2")}


def register_torchreid_models() -> None:
    """Make ``torchreid.models.build_model('dgnet_r50', ...)`` return :class:`AppearanceEncoder`."""
    for name, fn in TORCHREID_MODELS.items():
        tr.register_model(name, fn)


__all__ = ["AppearanceEncoder", "TORCHREID_MODELS", "register_torchreid_models"]
