"""The IDE teacher (``ft_net``): trained by this package, then loaded by DG-Net."""

from __future__ import annotations

import logging
import os

from torch.nn.parallel import DistributedDataParallel

from ..config import get_cfg
from ..data import build_train_loader
from ..losses import id_loss
from ..model_zoo import entry_config_path, is_remote_spec, resolve_weights
from ..modeling import build_model
from ..modeling.norm import convert_norm
from ..utils import comm
from ..utils.checkpoint import Checkpointer
from .base import IterationEngine
from .build import ENGINE_REGISTRY
from .optim import build_iter_scheduler, build_reid_optimizer

logger = logging.getLogger("dgnet_plugin")


@ENGINE_REGISTRY.register()
class TeacherEngine(IterationEngine):
    """Cross-entropy training of a plain re-ID baseline (``MODEL.META_ARCHITECTURE
    IDEBaseline``): SGD, backbone at ``SOLVER.REID.BASE_LR``, head at ``HEADS_LR_FACTOR`` x,
    per-iteration MultiStepLR. This is the teacher DG-Net distils from (paper section 3.2).

    With several processes the network is trained through ``DistributedDataParallel`` (one
    forward and one backward per step: DDP's reducer averages the gradients during the
    backward); ``model_all`` stays the plain network (checkpoints, evaluation)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        opt = build_reid_optimizer(cfg, self.model_all, ["classifier"], self.device)
        sched = build_iter_scheduler(opt, cfg.SOLVER.STEPS, cfg.SOLVER.REID_GAMMA)
        self.register_model("model", self.model_all, opt, sched)
        self._stream = None
        self._train_net = self.model_all

    def prepare_distributed(self) -> None:
        if comm.is_distributed() and self._train_net is self.model_all:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._train_net = DistributedDataParallel(self.model_all, device_ids=ids)

    def run_step(self, iteration: int):
        if self._stream is None:
            self._stream = build_train_loader(self.cfg, self.train_items, start=iteration)
        batch = self.to_device(next(self._stream))
        with self.autocast():
            logits = self._train_net(batch["img"])
        loss = id_loss(logits, batch["pid"], self.cfg.LOSS.LABEL_SMOOTH)
        opt = self._optims["model"]
        opt.zero_grad(set_to_none=True)
        self.amp.backward_step(loss, opt)
        return {"id": loss.detach()}


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

    Raises ``FileNotFoundError`` (no weights: train them with ``tools/train_net.py
    --config-file configs/teacher_r50.yml``), ``ModelZooError`` (unknown zoo entry, failed
    download or sha256 check) or ``CheckpointError`` (wrong identities/arch).
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
    tcfg = get_cfg()
    tcfg.merge_from_file(teacher_config_path(cfg))
    tcfg.MODEL.BACKBONE.PRETRAIN = False  # every weight comes from the checkpoint
    teacher = build_model(tcfg, num_classes)
    # DG-Net's MODEL.NORM: syncBN makes the teacher's batch statistics (TRAIN_BN) global,
    # FrozenBN makes it use its running statistics
    convert_norm(teacher, cfg.MODEL.NORM, device, comm.get_world_size())
    teacher.to(device)
    Checkpointer(teacher).load(path, checkpointables=[])
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    logger.info("Loaded teacher %s from %s", type(teacher).__name__, path)
    return teacher
