"""DG-Net's teacher: an IDE model (:mod:`dgnet_plugin.methods.ide`) trained first, then
frozen and distilled from (paper section 3.2, the primary-feature term)."""

from __future__ import annotations

import logging
import os

from ...config import ConfigError, load_cfg_file
from ...engine.loading import load_model
from ...engine.run import run_training
from ...engine.stages import Stage, derive_config
from ...model_zoo import entry_config_path, is_remote_spec, resolve_weights
from ...modeling.norm import convert_norm
from ...utils import comm
from ...utils.checkpoint import CheckpointError

logger = logging.getLogger("dgnet_plugin")


def teacher_config_path(cfg) -> str:
    """The config that describes the teacher's architecture: ``MODEL.TEACHER.CONFIG``, else
    the config of the ``zoo://NAME`` entry, else the ``config.yaml`` saved next to
    ``MODEL.TEACHER.WEIGHTS`` by ``tools/train_net.py``.

    Raises ``FileNotFoundError`` (no config found) or ``ModelZooError`` (unknown zoo entry).
    """
    if cfg.MODEL.TEACHER.CONFIG:
        return cfg.MODEL.TEACHER.CONFIG
    weights = cfg.MODEL.TEACHER.WEIGHTS
    if weights.lower().startswith("zoo://"):  # the zoo entry names its config
        return entry_config_path(weights[len("zoo://") :].strip("/"))
    saved = os.path.join(os.path.dirname(weights), "config.yaml")
    if os.path.isfile(saved):
        return saved
    raise FileNotFoundError(
        f"cannot tell the teacher's architecture: MODEL.TEACHER.CONFIG is empty and there is no "
        f"config.yaml next to MODEL.TEACHER.WEIGHTS '{weights}'; set MODEL.TEACHER.CONFIG"
    )


def load_teacher(cfg, num_classes: int, device):
    """Build the teacher from its config and load ``MODEL.TEACHER.WEIGHTS`` (strict).

    ``MODEL.TEACHER.WEIGHTS`` may also be ``zoo://NAME`` or a URL: it is downloaded into the
    cache first (:func:`dgnet_plugin.model_zoo.resolve_weights`).

    The model is built by :func:`~dgnet_plugin.engine.loading.load_model` (the package's one
    loader) from the teacher's config.

    Raises ``FileNotFoundError`` (no weights: train them with ``tools/train_net.py
    --config-file configs/teacher_r50.yml``), ``ModelZooError`` (unknown zoo entry, failed
    download or sha256 check) or ``CheckpointError`` (other identities than the training set,
    or another architecture).
    """
    path = cfg.MODEL.TEACHER.WEIGHTS
    if is_remote_spec(path):
        path = resolve_weights(path)
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"MODEL.TEACHER.WEIGHTS '{path}' does not exist. Train the teacher first "
            "(tools/train_net.py --config-file configs/teacher_r50.yml), or set "
            "MODEL.TEACHER.CONFIG so that tools/train_net.py trains it for you"
        )
    config = teacher_config_path(cfg)
    teacher, _ = load_model(config, path, device)
    if teacher.reid.num_classes != num_classes:
        raise CheckpointError(
            f"the teacher '{path}' classifies {teacher.reid.num_classes} identities but the "
            f"training set of {cfg.DATASETS.NAMES} has {num_classes}; train the teacher on the "
            "same DATASETS (or delete it: MODEL.TEACHER.CONFIG retrains it)"
        )
    # DG-Net's MODEL.NORM: syncBN makes the teacher's batch statistics (TRAIN_BN) global,
    # FrozenBN makes it use its running statistics
    convert_norm(teacher, cfg.MODEL.NORM, device, comm.get_world_size())
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    logger.info("Loaded teacher %s from %s", type(teacher).__name__, path)
    return teacher


def uses_teacher(cfg) -> bool:
    """Whether the run needs the teacher: the primary-feature term is on
    (``LOSS.TEACHER_MAX > 0``) or Ea starts from it (``MODEL.TEACHER.INIT_EA``)."""
    return cfg.LOSS.TEACHER_MAX > 0 or cfg.MODEL.TEACHER.INIT_EA


def init_appearance_encoder(ea, teacher) -> None:
    """Copy the trained teacher into Ea (``MODEL.TEACHER.INIT_EA``, not in the paper: a
    small-budget option): Ea's backbone gets the teacher's backbone, and both of Ea's heads
    (primary and fine-grained) get the teacher's embedding head, so Ea starts at the teacher's
    re-ID accuracy instead of ImageNet features and untrained classifiers.

    Raises:
        ConfigError: the teacher's backbone or head has other layers or shapes than Ea's
            (a teacher config with another ``MODEL.BACKBONE.NAME`` or ``MODEL.HEADS``).
    """
    pairs = [
        (ea.backbone, teacher.reid.backbone, "backbone"),
        (ea.classifier, teacher.reid.classifier, "head"),
        (ea.classifier_fine, teacher.reid.classifier, "head"),
    ]
    for dst, src, what in pairs:
        mine, theirs = dst.state_dict(), src.state_dict()
        bad = [k for k in mine if k not in theirs or tuple(theirs[k].shape) != tuple(mine[k].shape)]
        if bad or set(theirs) - set(mine):
            raise ConfigError(
                f"MODEL.TEACHER.INIT_EA: the teacher's {what} does not match Ea's (differing "
                f"tensors: {', '.join((bad or sorted(set(theirs) - set(mine)))[:4])}); train the "
                "teacher with the same MODEL.BACKBONE and MODEL.HEADS.EMBEDDING_DIM as DG-Net, or "
                "set MODEL.TEACHER.INIT_EA False"
            )
        dst.load_state_dict(theirs)
    logger.info("Ea initialised from the teacher (MODEL.TEACHER.INIT_EA)")


def teacher_config(cfg):
    """The teacher stage's config: ``MODEL.TEACHER.CONFIG`` read as a config of its own, with
    this run's ``DATASETS`` (ROOT, NAMES, TESTS) and ``MODEL.DEVICE``, its ``OUTPUT_DIR`` the
    folder of ``MODEL.TEACHER.WEIGHTS``."""
    t = cfg.MODEL.TEACHER
    merges = {"OUTPUT_DIR": os.path.dirname(t.WEIGHTS), "MODEL.DEVICE": cfg.MODEL.DEVICE}
    for key in ("ROOT", "NAMES", "TESTS"):
        merges[f"DATASETS.{key}"] = cfg.DATASETS[key]
    return derive_config(load_cfg_file(t.CONFIG), merges)


def dgnet_stages(cfg) -> list[Stage]:
    """DG-Net's pipeline before its own training: the stage ``teacher`` when the run needs a
    teacher (:func:`uses_teacher`) that ``MODEL.TEACHER.CONFIG`` describes and that is not a
    ``zoo://`` entry or a URL (those are downloaded by :func:`load_teacher`). The stage
    trains that config on the same ``DATASETS`` into the folder of ``MODEL.TEACHER.WEIGHTS``
    (:func:`teacher_config`); a finished teacher is reused, an interrupted one resumes.

    Raises:
        ConfigError: ``MODEL.TEACHER.WEIGHTS`` does not end in ``model_final.pth``.
    """
    t = cfg.MODEL.TEACHER
    if is_remote_spec(t.WEIGHTS) or not uses_teacher(cfg) or not t.CONFIG:
        return []  # without a config, load_teacher raises with instructions
    if os.path.basename(t.WEIGHTS) != "model_final.pth":
        raise ConfigError(
            f"MODEL.TEACHER.WEIGHTS '{t.WEIGHTS}' must end in model_final.pth to be trained "
            "from MODEL.TEACHER.CONFIG (it names the teacher's OUTPUT_DIR)"
        )
    return [
        Stage(
            "teacher",
            lambda ctx: run_training(teacher_config(ctx.cfg), resume=True),
            lambda ctx: os.path.isfile(ctx.cfg.MODEL.TEACHER.WEIGHTS),
            f"the teacher ({t.CONFIG}) on the same data",
            every_process=True,
            config=teacher_config,
            outputs=lambda c: [os.path.dirname(c.MODEL.TEACHER.WEIGHTS)],
        )
    ]
