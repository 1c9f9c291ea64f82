"""Factories injected into ``torchreid.models.build_model``."""

from __future__ import annotations

from ...config import get_cfg
from ...utils import torchreid_compat as tr
from .appearance import AppearanceEncoder, build_appearance_encoder


def _factory(backbone: str):
    def build(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
        """DG-Net's appearance encoder Ea as a torchreid model (``loss='softmax'`` only).

        Training ``forward`` returns ``[logits_prim, logits_fine]``, eval returns the 1024-d
        feature. ``pretrained=True`` loads ImageNet weights (download, or ``pretrain_path=``).
        """
        if loss != "softmax":
            raise ValueError(f"{backbone} Ea supports loss='softmax' only, got loss='{loss}'")
        cfg = get_cfg("dgnet")
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


#: backbone -> torchreid model name of Ea
TORCHREID_NAMES = {"resnet50": "dgnet_r50", "mobilenetv2": "dgnet_mobilenetv2"}


def torchreid_export(cfg, model) -> tuple[str | None, list[str]]:
    """DG-Net's ``export`` entry (``tools/export.py``): the torchreid model name that builds
    ``model`` (Ea) for ``cfg``'s backbone, or ``None``, and the config values that change the
    eval features but that torchreid's factory (the package defaults) cannot know, as
    ``KEY=value`` strings."""
    from ...modeling.heads import HEAD_REGISTRY
    from ...utils.registry import lookup

    name = TORCHREID_NAMES.get(cfg.MODEL.BACKBONE.NAME)
    if not isinstance(model, AppearanceEncoder) or name is None:
        return None, []
    default = get_cfg("dgnet")
    keys = [
        ("MODEL.BACKBONE.LAST_STRIDE", lambda c: c.MODEL.BACKBONE.LAST_STRIDE),
        ("MODEL.HEADS.POOL", lambda c: c.MODEL.HEADS.POOL),
        ("MODEL.HEADS.EMBEDDING_DIM", lambda c: c.MODEL.HEADS.EMBEDDING_DIM),
        (
            "MODEL.HEADS.NAME",  # a renamed head (ClassBlock) is the same head
            lambda c: lookup(HEAD_REGISTRY, c.MODEL.HEADS.NAME, "MODEL.HEADS.NAME").__name__,
        ),
    ]
    differs = [f"{k}={get(cfg)}" for k, get in keys if get(cfg) != get(default)]
    return name, differs


__all__ = [
    "AppearanceEncoder",
    "TORCHREID_MODELS",
    "TORCHREID_NAMES",
    "register_torchreid_models",
    "torchreid_export",
]
