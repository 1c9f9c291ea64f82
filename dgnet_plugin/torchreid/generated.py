"""Re-ID on real + generated images (CamStyle, SPGAN, PTGAN, LSRO, PN-GAN: generate, then
train) with a ``torchreid.engine.Engine``.

The generated set is a folder written by the offline pipeline's generation stage
(:func:`dgnet_plugin.data.generated.write_generated_set`: Market-layout images, a
``manifest.csv`` with each image's source identity). :func:`register_generated_dataset`
makes a torchreid dataset of a real torchreid dataset's training images plus that folder's
images in the real label space (a generated image takes its source's identity), whose test
sets are the real dataset's; :class:`ImageGeneratedEngine` trains on it with the CLI's step
(:meth:`~dgnet_plugin.offline_augmentation.GeneratedReIDTrainer.train_step`: each sample's
label rule, ``LOSS.LABEL.REAL`` / ``GENERATED``, is the loss).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ConfigError, load_cfg_file
from ..data.generated import read_generated_set
from ..engine import ENGINE_REGISTRY
from ..engine.optim import build_iter_scheduler
from ..engine.precision import PhaseUpdater
from ..modeling import build_model
from ..modeling.norm import convert_norm
from ..offline_augmentation.data import label_generated
from ..offline_augmentation.engine import GeneratedReIDTrainer, freeze_reid_parameters
from ..utils import torchreid_compat as tr
from .base import ConfiguredEngine

#: ``dsetid`` of an item: real (0) or generated (1); the ``generated`` flag of a batch
REAL_DSETID, GENERATED_DSETID = 0, 1


class GeneratedImageDataset(tr.ImageDataset):
    """A torchreid image dataset: the training images of the real dataset :attr:`real`
    (a registered torchreid name, e.g. ``market1501``, read under torchreid's ``root``)
    followed by the generated images of the folder :attr:`generated_root`, each labelled
    with its source identity's training label (``-1`` without one: LSRO's unlabelled
    images); query and gallery are the real dataset's. ``dsetid`` is 0 for a real item and
    1 for a generated one, and every item has ``generated`` (``bool``), the flag the
    label-assignment loss reads. Made by :func:`register_generated_dataset`.

    Raises:
        DatasetNotFoundError: ``generated_root`` is not a finished generated set.
        GeneratedSetError: a generated image's source identity is not a training identity
            of the real dataset (labelled sets only).
    """

    real = "market1501"
    generated_root = ""
    labelled = True

    def __init__(self, root: str = "", **kwargs):
        real = tr.init_image_dataset(self.real, root=root, mode="train", verbose=False)
        samples = read_generated_set(self.generated_root)
        gen = label_generated(samples, real.train, self.labelled)
        train = [(p, pid, cam, REAL_DSETID) for p, pid, cam, *_ in real.train]
        train += [(p, pid, cam, GENERATED_DSETID) for p, pid, cam, _ in gen]
        kwargs.pop("verbose", None)
        super().__init__(train, real.query, real.gallery, verbose=False, **kwargs)

    def get_num_pids(self, data):  # unlabelled generated images (-1) are not identities
        return len({it[1] for it in data if it[1] >= 0})

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item["generated"] = item["dsetid"] == GENERATED_DSETID
        return item


def register_generated_dataset(
    name: str, generated_root: str, real: str = "market1501", labelled: bool = True
) -> type:
    """Register ``name`` with torchreid as :class:`GeneratedImageDataset` of the real
    dataset ``real`` and the generated folder ``generated_root`` (``labelled=False``: every
    generated image gets label -1, for ``LOSS.LABEL.GENERATED`` ``lsro`` / ``argmax``).
    Then ``ImageDataManager(root=..., sources=name)`` trains on both. Registering a name
    again replaces it. Returns the class."""
    cls = type(
        f"Generated_{name}",
        (GeneratedImageDataset,),
        {"real": real, "generated_root": str(generated_root), "labelled": labelled},
    )
    tr.image_dataset_registry()[name] = cls
    return cls


def build_generated_reid(num_classes: int, config_file: str, opts=None) -> nn.Module:
    """The re-ID network of a generate-then-train config (``configs/camstyle_r50.yml``,
    ``lsro_r50.yml``, ...; its ``MODEL.META_ARCHITECTURE``, e.g. ``IDEBaseline``: logits in
    training, the test feature in eval) for ``num_classes`` training identities, with
    ``MODEL.NORM`` and ``MODEL.FREEZE`` applied as the CLI does. The config is kept as
    ``model.cfg``; its ``ENGINE.NAME`` (e.g. ``CamStyleEngine``) names the step.

    Raises:
        ConfigError: the config's engine does not train on generated images, or a bad value.
    """
    cfg = load_generated_reid_cfg(config_file, opts)
    model = build_model(cfg, num_classes)
    convert_norm(model.reid, cfg.MODEL.NORM, torch.device("cpu"), 1)
    freeze_reid_parameters(cfg, model)
    model.cfg = cfg
    return model


def load_generated_reid_cfg(config_file: str, opts=None):
    """The frozen config of ``config_file`` (with ``KEY VALUE`` ``opts``, ``MODEL.HEADS.
    NUM_CLASSES`` 0) whose ``ENGINE.NAME`` is a :class:`GeneratedReIDTrainer`.

    Raises:
        ConfigError: another engine.
    """
    cfg = load_cfg_file(config_file, list(opts or []), freeze=False)
    engine = ENGINE_REGISTRY.get(cfg.ENGINE.NAME)
    if not issubclass(engine, GeneratedReIDTrainer):
        raise ConfigError(
            f"'{config_file}' trains with {cfg.ENGINE.NAME}; the torchreid engine for generated "
            "images needs a generate-then-train re-ID config (camstyle_r50.yml, lsro_r50.yml, "
            "spgan_r50.yml, ptgan_r50.yml, pngan_r50.yml)"
        )
    cfg.MODEL.HEADS.NUM_CLASSES = 0
    cfg.freeze()
    return cfg


def _step_class(engine: type) -> type:
    """The CLI engine's step code (``engine.train_step``, with its ``label_loss``) on a network
    and optimiser given from outside: only what the step reads is set."""

    def __init__(self, cfg, model, device):
        self.cfg, self.model, self.device = cfg, model, device
        self.amp = PhaseUpdater.for_device(cfg.SOLVER.AMP, device, self.AMP_PHASES)
        self.separate_forward = bool(cfg.GENERATED.SEPARATE_FORWARD)
        self.optimizers = {"model": self.build_optimizer()}

    return type(f"_{engine.__name__}Step", (engine,), {"__init__": __init__})


class ImageGeneratedEngine(ConfiguredEngine):
    """Re-ID on real + generated images in torchreid's ``Engine``: ``run``, ``test()``
    (``cfg.TEST``), the TensorBoard writer and ``model.pth.tar-N`` checkpoints as for
    torchreid's own engines.

    Args:
        datamanager: a torchreid ``ImageDataManager`` on a dataset of
            :func:`register_generated_dataset` (any sampler: the real / generated share of a
            batch is the sampler's draw, where the CLI fixes ``GENERATED.PER_BATCH``).
        model: :func:`build_generated_reid`'s network (``model.cfg`` is the config).
        optimizer: default the CLI engine's (``build_optimizer``: the classifier at
            ``SOLVER.REID.HEADS_LR_FACTOR`` x, or Caffe's per-layer multipliers).
        scheduler: a torchreid scheduler stepped once per epoch; default the CLI's
            MultiStepLR over iterations (``SOLVER.STEPS``, ``REID_GAMMA``), stepped after every
            iteration.
        use_gpu: torchreid's flag (CUDA when available).

    ``forward_backward`` = the config's ``ENGINE.NAME`` engine's ``train_step`` (e.g.
    :class:`~dgnet_plugin.methods.camstyle.CamStyleEngine`: real and generated images in
    separate forwards with ``GENERATED.SEPARATE_FORWARD``, hard labels for real images,
    LSR for generated ones) on ``{img, pid, generated}``.

    Raises:
        ConfigError: the training set has no ``generated`` flag (not a dataset of
            :func:`register_generated_dataset`).
    """

    def __init__(self, datamanager, model, optimizer=None, scheduler=None, use_gpu=True):
        if not isinstance(datamanager.train_loader.dataset, GeneratedImageDataset):
            raise ConfigError(
                "the datamanager's training set is not real + generated: register the generated "
                "folder with register_generated_dataset(name, folder) and build the "
                "ImageDataManager with sources=name (one source)"
            )
        super().__init__(datamanager, model.cfg, use_gpu)
        cfg = self.cfg
        self.model = model.to(self.device)
        self.step = _step_class(ENGINE_REGISTRY.get(cfg.ENGINE.NAME))(cfg, self.model, self.device)
        if optimizer is None:
            optimizer = self.step.optimizers["model"]
        self.step.optimizers["model"] = optimizer
        if scheduler is None:
            scheduler = build_iter_scheduler(optimizer, cfg.SOLVER.STEPS, cfg.SOLVER.REID_GAMMA)
            self._per_iteration.append(scheduler)
        self.register_model("model", self.model, optimizer, scheduler)
        self.optimizer, self.scheduler = optimizer, None

    def batch(self, data: dict) -> dict:
        """The step's batch ``{img, pid, camid, generated}`` on the device."""
        return {
            "img": data["img"].to(self.device),
            "pid": torch.as_tensor(data["pid"]).to(self.device),
            "camid": torch.as_tensor(data["camid"]).to(self.device),
            "generated": torch.as_tensor(data["generated"]).to(self.device),
        }

    def forward_backward(self, data: dict) -> dict[str, float]:
        losses = self.step.train_step(self.batch(data), self.iteration())
        self.step_iteration_schedulers()
        return {k: float(v) for k, v in losses.items()}
