"""DG-Net (Zheng et al., CVPR 2019) trained by a ``torchreid.engine.Engine``.

A torchreid script keeps its ``ImageDataManager`` (``train_sampler='RandomIdentitySampler'``,
``num_instances >= 2``), builds the networks with :func:`build_dgnet`, and runs
:class:`ImageDGNetEngine`. Each ``forward_backward`` is one iteration of
:meth:`dgnet_plugin.methods.dgnet.DGNetEngine.train_step`, the CLI's own step code.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch import nn

from ..config import ConfigError
from ..data.transforms import build_random_erasing
from ..engine.optim import build_adam, build_iter_scheduler, build_reid_optimizer
from ..engine.precision import PhaseUpdater
from ..methods.dgnet import DGNetEngine
from ..methods.dgnet.teacher import init_appearance_encoder
from ..modeling import build_model
from ..modeling.norm import convert_norm
from ..utils import torchreid_compat as tr
from .base import SAMPLER_HELP, ConfiguredEngine, check_identity_sampler, load_method_cfg

logger = logging.getLogger("dgnet_plugin")


def build_dgnet(num_classes: int, config_file: str | None = None, opts=None) -> nn.Module:
    """DG-Net's meta-architecture (:class:`~dgnet_plugin.methods.dgnet.DGNet`: ``reid`` = Ea,
    ``gen`` = Es + G + MLPs, ``dis`` = D) for ``num_classes`` training identities, built
    from ``config_file`` (a DG-Net config such as ``configs/dgnet_r50.yml``, or the name of
    a packaged one; default: the DG-Net recipe defaults) with ``KEY VALUE`` ``opts``, and
    ``MODEL.NORM`` applied to Ea as the CLI does. The config is kept as ``model.cfg``
    (the engine reads its ``SOLVER``, ``LOSS``, ``INPUT.REA`` and ``TEST`` keys).

    Raises:
        ConfigError: the config is not a DG-Net one, or a bad value.
    """
    cfg = load_method_cfg("dgnet", "DGNet", config_file, opts)
    model = build_model(cfg, num_classes)
    convert_norm(model.reid, cfg.MODEL.NORM, torch.device("cpu"), 1)
    model.cfg = cfg
    return model


def build_dgnet_optimizers(model: nn.Module, device=None) -> dict[str, torch.optim.Optimizer]:
    """The CLI's three optimisers of ``model`` (from :func:`build_dgnet`, already on
    ``device``), by update phase: ``model`` = Ea (``SOLVER.REID``, heads at
    ``HEADS_LR_FACTOR`` x), ``gen`` = Es + G + MLPs (Adam ``SOLVER.GEN``), ``dis`` = D (Adam
    ``SOLVER.DIS``). With ``device`` (a ``torch.device``) they use the CLI's fused update
    kernels on CPU and CUDA (:func:`~dgnet_plugin.engine.optim.with_fast_impl`): the same
    update as torch's default up to float rounding."""
    cfg = model.cfg
    return {
        "model": build_reid_optimizer(cfg, model.reid, ["classifier", "classifier_fine"], device),
        "gen": build_adam(model.gen, cfg.SOLVER.GEN, device),
        "dis": build_adam(model.dis, cfg.SOLVER.DIS, device),
    }


class TorchreidTeacher(nn.Module):
    """Any torchreid re-ID model (e.g. ``resnet50`` trained by ``ImageSoftmaxEngine``) as
    DG-Net's teacher: ``forward(x, return_all=True)`` returns ``{"logits": (logits,)}``
    (``(N, K)``) whatever the mode of its layers, by running the model's forward with its
    top-level ``training`` flag set (torchreid models return logits in training, features
    in eval); its batch-norm and dropout layers keep their own modes, which DG-Net's
    teacher call sets."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, return_all: bool = False):
        was = self.model.training
        self.model.training = True  # the top level only: its layers keep their modes
        try:
            out = self.model(x)
        finally:
            self.model.training = was
        logits = out[0] if isinstance(out, tuple | list) else out
        return {"logits": (logits,)} if return_all else logits


def load_teacher_model(teacher, num_classes: int, model_name: str = "") -> nn.Module:
    """DG-Net's teacher from ``teacher``: a ``dgnet_plugin`` model (used as it is), any
    other ``nn.Module`` (a torchreid model, wrapped in :class:`TorchreidTeacher`), a
    checkpoint of ``tools/train_net.py`` (built from the ``config.yaml`` beside it), or a
    torchreid checkpoint (``model.pth.tar-N``, built as ``torchreid.models.build_model(
    model_name, num_classes)``). Frozen (``requires_grad`` off), in eval mode.

    Raises:
        FileNotFoundError: ``teacher`` is a path that does not exist.
        ValueError: a torchreid checkpoint without ``model_name``.
        CheckpointError: a CLI checkpoint that cannot be read or built.
    """
    if isinstance(teacher, str):
        if not os.path.isfile(teacher):
            raise FileNotFoundError(f"teacher checkpoint '{teacher}' does not exist")
        state = torch.load(teacher, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            from ..engine.loading import load_model

            config = os.path.join(os.path.dirname(teacher), "config.yaml")
            teacher, _ = load_model(config, teacher, "cpu")
        else:
            if not model_name:
                raise ValueError(
                    f"'{teacher}' is a torchreid checkpoint: give teacher_name, the "
                    "torchreid model name it was trained as (e.g. 'resnet50')"
                )
            net = tr.models.build_model(model_name, num_classes=num_classes, pretrained=False)
            tr.utils.load_pretrained_weights(net, teacher)
            teacher = net
    if not type(teacher).__module__.startswith("dgnet_plugin"):
        teacher = TorchreidTeacher(teacher)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class _DGNetStep(DGNetEngine):
    """The CLI engine's step code (:meth:`DGNetEngine.train_step`) on networks and
    optimisers given from outside: only what the step reads is set (one process, no DDP)."""

    def __init__(self, cfg, model, optimizers, teacher, device):  # noqa: D107 (no super())
        self.cfg, self.model, self.optimizers = cfg, model, optimizers
        self.teacher = teacher
        self.device = device
        self.amp = PhaseUpdater.for_device(cfg.SOLVER.AMP, device, self.AMP_PHASES)
        self._phases = {"gen": model, "dis": None}


def dgnet_pairs(data: dict, iteration: int, seed: int, erase=None) -> tuple[dict, dict]:
    """DG-Net's two streams ``(a, b)`` from one torchreid batch of ``N`` images: ``a`` = the
    first ``N // 2`` images, ``b`` the next ``N // 2`` (with ``RandomIdentitySampler``
    the batch holds ``N / num_instances`` identities of ``num_instances`` consecutive images,
    so ``a`` and ``b`` hold different identities when that count is even); each image's
    ``pos`` is another image of its identity from the same batch, drawn uniformly from
    ``seed`` and ``iteration``. With ``erase`` (torchreid's ``RandomErasing``) the ID losses'
    erased copies ``img_erased`` / ``pos_erased`` are added. Tensors on the batch's device.

    Raises:
        ValueError: an image has no other image of its identity in the batch; the message
            names ``train_sampler`` and ``num_instances``.
    """
    imgs, pids = data["img"], torch.as_tensor(data["pid"])
    n = len(pids) - len(pids) % 2
    rng = np.random.default_rng([seed, iteration])
    pos = []
    for i in range(n):
        others = [j for j in range(len(pids)) if j != i and pids[j] == pids[i]]
        if not others:
            raise ValueError(
                f"DG-Net needs a positive of every image in its batch, but identity "
                f"{int(pids[i])} has one image in this batch of {len(pids)}: {SAMPLER_HELP}"
            )
        pos.append(others[int(rng.integers(len(others)))])
    pos_t = torch.as_tensor(pos)
    streams = []
    for part in (slice(0, n // 2), slice(n // 2, n)):
        s = {"img": imgs[part], "pos": imgs[pos_t[part]], "pid": pids[part].to(imgs.device)}
        if erase is not None:
            s["img_erased"] = torch.stack([erase(x.clone()) for x in s["img"]])
            s["pos_erased"] = torch.stack([erase(x.clone()) for x in s["pos"]])
        streams.append(s)
    return streams[0], streams[1]


def check_identity_batches(datamanager) -> None:
    """DG-Net's :func:`~.base.check_identity_sampler` (its positives come from the batch).

    Raises:
        ConfigError: another sampler, or ``num_instances < 2``; names both settings.
    """
    check_identity_sampler(datamanager, "DG-Net forms its positive pairs inside each batch")


class ImageDGNetEngine(ConfiguredEngine):
    """DG-Net's training in torchreid's ``Engine``: ``run(save_dir, max_epoch, start_epoch,
    eval_freq, test_only, print_freq, ...)``, ``test()``, ``visrank``, the TensorBoard writer,
    LR updates and ``model.pth.tar-N`` checkpoints work as for torchreid's own engines.

    Args:
        datamanager: a torchreid ``ImageDataManager`` whose training batches hold at least
            two images of every identity (``train_sampler='RandomIdentitySampler'``,
            ``num_instances >= 2``); its images are ImageNet-normalised, as DG-Net's.
        model: :func:`build_dgnet`'s meta-architecture (``model.cfg`` is the config).
        optimizers: ``{"model": Ea's, "gen": Es + G + MLPs', "dis": D's}``; default
            :func:`build_dgnet_optimizers` on the engine's device (the CLI's).
        schedulers: the same keys, torchreid schedulers stepped once per epoch; default (or
            a missing key): the CLI's MultiStepLR over iterations (``SOLVER.STEPS``,
            ``SOLVER.REID_GAMMA`` / ``SOLVER.GAMMA``), stepped after every iteration.
        teacher: the IDE teacher of the primary-feature term (``LOSS.TEACHER_MAX > 0``):
            any torchreid model, a torchreid checkpoint (with ``teacher_name``), a
            ``tools/train_net.py`` checkpoint, or ``None`` (then the term must be off).
        use_gpu: torchreid's flag (CUDA when available).

    Registered networks (``register_model``; checkpoints ``save_dir/<name>/model.pth.tar-N``):
    ``model`` = Ea (``self.model``: the network ``test()`` and ``FeatureExtractor`` use),
    ``gen`` = Es + G + MLPs, ``dis`` = D.

    ``forward_backward`` = :meth:`DGNetEngine.train_step` on :func:`dgnet_pairs` of the
    batch at iteration ``epoch * batches_per_epoch + batch`` (the warm-up schedule of
    ``LOSS`` counts these): the D update, then the G + Ea update with the teacher.
    ``MODEL.TEACHER.INIT_EA``: Ea starts from the teacher's backbone and head when ``run``
    starts at epoch 0 (a ``tools/train_net.py`` teacher only). Runs in one process.

    Raises:
        ConfigError: (at construction) a datamanager without identity batches
            (:func:`check_identity_batches`); (in ``run``, training) the teacher term is on
            without a teacher, or ``INIT_EA`` with a teacher that is not a ``dgnet_plugin``
            model.
    """

    def __init__(
        self,
        datamanager,
        model,
        optimizers=None,
        schedulers=None,
        teacher=None,
        teacher_name: str = "",
        use_gpu: bool = True,
    ):
        check_identity_batches(datamanager)
        super().__init__(datamanager, model.cfg, use_gpu)
        cfg = self.cfg
        self.dgnet = model.to(self.device)
        optimizers = optimizers or build_dgnet_optimizers(model, self.device)
        schedulers = dict(schedulers or {})
        steps = {"model": cfg.SOLVER.REID_GAMMA, "gen": cfg.SOLVER.GAMMA, "dis": cfg.SOLVER.GAMMA}
        for name, gamma in steps.items():
            if schedulers.get(name) is None:
                schedulers[name] = build_iter_scheduler(optimizers[name], cfg.SOLVER.STEPS, gamma)
                self._per_iteration.append(schedulers[name])
        for name, net in (("model", model.reid), ("gen", model.gen), ("dis", model.dis)):
            self.register_model(name, net, optimizers[name], schedulers[name])
        self.model, self.optimizer, self.scheduler = model.reid, optimizers["model"], None
        if teacher is not None:
            teacher = load_teacher_model(teacher, datamanager.num_train_pids, teacher_name)
            teacher = teacher.to(self.device)
        self.teacher = teacher
        self.step = _DGNetStep(cfg, model, optimizers, teacher, self.device)
        self.erase = build_random_erasing(cfg)

    def run(self, *args, start_epoch: int = 0, test_only: bool = False, **kwargs):
        """torchreid's ``run``; at a fresh start with ``MODEL.TEACHER.INIT_EA``, Ea is first
        copied from the teacher."""
        if self.cfg.LOSS.TEACHER_MAX > 0 and self.teacher is None and not test_only:
            raise ConfigError(
                "LOSS.TEACHER_MAX > 0 needs a teacher: pass teacher= (a torchreid model or "
                "checkpoint), or build_dgnet(..., opts=['LOSS.TEACHER_MAX', '0'])"
            )
        if self.cfg.MODEL.TEACHER.INIT_EA and start_epoch == 0 and not test_only:
            if self.teacher is None or not hasattr(self.teacher, "reid"):
                raise ConfigError(
                    "MODEL.TEACHER.INIT_EA needs a teacher trained by tools/train_net.py "
                    "(same backbone and head as Ea); set MODEL.TEACHER.INIT_EA False"
                )
            init_appearance_encoder(self.dgnet.reid, self.teacher)
        return super().run(*args, start_epoch=start_epoch, test_only=test_only, **kwargs)

    def pairs(self, data: dict, iteration: int) -> tuple[dict, dict]:
        """The ``(a, b)`` streams of a torchreid batch, on the device (:func:`dgnet_pairs`)."""
        data = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in data.items()}
        return dgnet_pairs(data, iteration, self.cfg.SEED, self.erase)

    def forward_backward(self, data: dict) -> dict[str, float]:
        it = self.iteration()
        losses = self.step.train_step(self.pairs(data, it), it)
        self.step_iteration_schedulers()
        return {k: float(v) for k, v in losses.items()}
