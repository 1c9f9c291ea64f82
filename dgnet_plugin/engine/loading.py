"""One way to load a trained model for inference: ``load_model``.

Used by ``--eval-only``, the generation and export tools, ``FeatureExtractor`` and DG-Net's
teacher. The number of identities always comes from the checkpoint
(:func:`num_classes_of`), so a model trained on one dataset can be evaluated on another.
"""

from __future__ import annotations

import os

import torch

from ..config import load_cfg_file
from ..errors import describe_load_error
from ..model_zoo import resolve_weights
from ..modeling import build_model
from ..utils.checkpoint import Checkpointer, CheckpointError
from .defaults import resolve_device

#: the identity classifier's weight, ``(num_classes, embed_dim)``, at the end of a key
CLASSIFIER_KEY = "classifier.classifier.weight"


def local_weights(weights: str) -> str:
    """``weights`` as a local file: a path, or ``zoo://NAME`` / a URL downloaded into the
    cache (:func:`dgnet_plugin.model_zoo.resolve_weights`).

    Raises:
        CheckpointError: no such file (with the fix).
    """
    if weights and not os.path.isfile(weights):
        weights = resolve_weights(weights)  # zoo://NAME or a URL: downloaded into the cache
    if not weights or not os.path.isfile(weights):
        raise CheckpointError(
            f"checkpoint '{weights}' does not exist; pass OUTPUT_DIR/model_final.pth written "
            "by tools/train_net.py, zoo://NAME (MODEL_ZOO.md) or a URL"
        )
    return weights


def num_classes_of(state_dict: dict, source: str) -> int:
    """The identity count of a model's state dict: rows of its re-ID network's classifier
    (``reid.classifier.classifier.weight`` for a meta-architecture with a separate re-ID
    network, ``classifier.classifier.weight`` for a plain one; else the single key ending in
    ``.classifier.weight``, e.g. D2RL's ``reid_net.classifier.weight``, AGW's
    ``head.classifier.weight``).

    Raises:
        CheckpointError: there is no classifier weight (names ``source``).
    """
    for key in ("reid." + CLASSIFIER_KEY, CLASSIFIER_KEY):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    others = [k for k in state_dict if k.endswith(".classifier.weight")]
    if len(others) == 1:
        return int(state_dict[others[0]].shape[0])
    raise CheckpointError(
        f"'{source}' has no '{CLASSIFIER_KEY}': not a dgnet_plugin re-ID checkpoint of "
        "tools/train_net.py"
    )


def read_weights_file(weights: str, expected: str = "a .pth written by tools/train_net.py"):
    """``torch.load`` of a local file on CPU with ``weights_only=True`` (a pickle of arbitrary
    objects, which could run code, is refused).

    Raises:
        CheckpointError: unreadable; one line naming the file, the reason and ``expected``.
    """
    try:
        return torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"cannot read checkpoint '{weights}' ({describe_load_error(e)}); pass {expected}"
        ) from None


def read_state_dict(weights: str) -> dict:
    """The ``model`` state dict of a dgnet_plugin checkpoint (:func:`read_weights_file`).

    Raises:
        CheckpointError: unreadable, or not a dgnet_plugin checkpoint.
    """
    data = read_weights_file(weights)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise CheckpointError(
            f"'{weights}' is not a checkpoint of tools/train_net.py (no 'model' entry)"
        )
    return data["model"]


def load_model(config, weights: str, device="auto", opts=None):
    """Build the meta-architecture of ``config`` (a config file or a loaded ``CfgNode``) with
    the identity count of ``weights`` and load them strictly. The backbone is not initialised
    from ImageNet (every weight comes from ``weights``). ``opts``: ``KEY VALUE`` overrides of
    a config file.

    Returns ``(model in eval mode on device, cfg)``.

    Raises:
        CheckpointError: ``weights`` missing, unreadable, or not fitting the config.
        ConfigError: a bad config.
    """
    if isinstance(config, str):
        cfg = load_cfg_file(config, list(opts or []), freeze=False)
    else:
        cfg = config.clone()
        cfg.defrost()
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.freeze()
    weights = local_weights(weights)
    num_classes = num_classes_of(read_state_dict(weights), weights)
    model = build_model(cfg, num_classes)
    Checkpointer(model).load(weights, checkpointables=[])
    return model.to(resolve_device(device)).eval(), cfg
