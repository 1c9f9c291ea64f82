"""D2RL (Wang et al., CVPR 2019) trained by a ``torchreid.engine.Engine``.

A torchreid script builds its ``ImageDataManager`` on one of the plugin's visible-infrared
datasets (``sources='sysu_mm01'``, ``'regdb'`` or ``'regdb_trial_<t>'``) with
``train_sampler='RandomIdentitySampler'``, builds the networks with :func:`build_d2rl`, and
runs :class:`ImageD2RLEngine`. Each ``forward_backward`` is one iteration of
:meth:`dgnet_plugin.methods.d2rl.D2RLEngine.train_step`, the CLI's own step code.

How the modality travels: the plugin's visible-infrared datasets
(:class:`dgnet_plugin.data.cross_modality.CrossModalityDataset`) add ``modality``
(``"visible"`` | ``"infrared"``) to every item, which torchreid's loader batches as a list of
strings; under torchreid's transforms an infrared image comes as three equal channels,
normalised like a visible one. :func:`d2rl_batch` splits a batch by modality and gives the
infrared images back their one channel, normalised as D2RL's infrared input.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate
from torchvision.transforms import Normalize

from ..config import ConfigError
from ..data.cross_modality import CrossModalityDataset
from ..data.sample import INFRARED, VISIBLE
from ..engine.optim import build_adam, build_iter_scheduler, build_reid_optimizer
from ..engine.precision import PhaseUpdater
from ..methods.d2rl import D2RLEngine
from ..methods.d2rl.engine import reid_lr_scheduler
from ..modeling import build_model
from ..modeling.blocks import renormalize
from .base import SAMPLER_HELP, ConfiguredEngine, check_identity_sampler, load_method_cfg


def build_d2rl(num_classes: int, config_file: str | None = None, opts=None) -> nn.Module:
    """D2RL's meta-architecture (:class:`~dgnet_plugin.methods.d2rl.D2RL`: ``gen`` = the UNIT
    translator T_I, ``dis_v`` / ``dis_i`` = the discriminators, ``reid_net`` = T_F) for
    ``num_classes`` training identities, built from ``config_file`` (a D2RL config such as
    ``configs/d2rl_r50_sysu.yml``, or the name of a packaged one; default: the D2RL recipe
    defaults) with ``KEY VALUE`` ``opts``. The config is kept as ``model.cfg`` (the engine
    reads its ``SOLVER``, ``LOSS``, ``MODEL.D2RL``, ``INPUT.PIXEL_MEAN/STD`` and ``TEST``
    keys).

    Raises:
        ConfigError: the config is not a D2RL one, or a bad value.
    """
    cfg = load_method_cfg("d2rl", "D2RL", config_file, opts)
    model = build_model(cfg, num_classes)
    model.cfg = cfg
    return model


def build_d2rl_optimizers(model: nn.Module, device=None) -> dict[str, torch.optim.Optimizer]:
    """The CLI's three optimisers of ``model`` (from :func:`build_d2rl`, already on
    ``device``), by update phase: ``model`` = T_F (``SOLVER.REID``, the layers of
    ``MODEL.D2RL.HEADS`` at ``HEADS_LR_FACTOR`` x), ``gen`` = T_I (Adam ``SOLVER.GEN``),
    ``dis`` = both discriminators (Adam ``SOLVER.DIS``); with ``device`` the CLI's fused
    update kernels (:func:`~dgnet_plugin.engine.optim.with_fast_impl`)."""
    cfg = model.cfg
    return {
        "model": build_reid_optimizer(cfg, model.reid_net, list(cfg.MODEL.D2RL.HEADS), device),
        "gen": build_adam(model.gen, cfg.SOLVER.GEN, device),
        "dis": build_adam(nn.ModuleList([model.dis_v, model.dis_i]), cfg.SOLVER.DIS, device),
    }


def infrared_to_one_channel(img: torch.Tensor, stats: dict) -> torch.Tensor:
    """Infrared images read by torchreid as three equal channels ``(N, 3, H, W)`` normalised
    with ``stats[3]`` -> ``(N, 1, H, W)`` normalised with ``stats[1]`` (the CLI's infrared
    input: the same pixel values, up to float rounding). ``stats``: ``{3: (mean, std), 1:
    (mean, std)}`` (D2RL's ``model.stats``)."""
    (mean3, std3), (mean1, std1) = stats[3], stats[1]
    return renormalize(img[:, :1], mean3[:1], std3[:1], mean1, std1)


def d2rl_batch(data: dict, stats: dict) -> dict:
    """D2RL's batch ``{img_v (Nv, 3, H, W), pid_v (Nv,), img_i (Ni, 1, H, W), pid_i (Ni,)}``
    from a torchreid batch of a visible-infrared dataset (``img`` ``(N, 3, H, W)``, ``pid``,
    ``modality`` a list of ``"visible"`` | ``"infrared"``): the identities of the batch that
    have images of both modalities, in their order of first appearance, each with all its
    images of the batch (visible ones in ``img_v``, infrared ones in ``img_i``, turned into
    one channel by :func:`infrared_to_one_channel`). An identity with one modality in the
    batch is left out, as the CLI's sampler draws every identity in both. Tensors on the
    batch's device.

    Raises:
        ValueError: the batch has no ``modality`` (not a visible-infrared dataset), or no
            identity with both modalities; the message names ``train_sampler`` and
            ``num_instances``.
    """
    if "modality" not in data:
        raise ValueError(
            "D2RL needs the modality of every image: build the ImageDataManager on a "
            "visible-infrared dataset (sources='sysu_mm01', 'regdb' or 'regdb_trial_<t>')"
        )
    imgs, pids, mods = data["img"], torch.as_tensor(data["pid"]), list(data["modality"])
    order = list(dict.fromkeys(int(p) for p in pids))
    both = [p for p in order if {VISIBLE, INFRARED} <= {m for q, m in zip(pids, mods) if q == p}]
    if not both:
        raise ValueError(
            f"D2RL trains on identities seen in both modalities in one batch, but no identity "
            f"of this batch of {len(pids)} has visible and infrared images: {SAMPLER_HELP}; "
            "a larger num_instances makes both modalities likelier"
        )
    out = {}
    for key, mod in (("v", VISIBLE), ("i", INFRARED)):
        idx = [j for p in both for j in range(len(pids)) if int(pids[j]) == p and mods[j] == mod]
        index = torch.as_tensor(idx, device=imgs.device)
        out[f"img_{key}"] = imgs[index]
        out[f"pid_{key}"] = pids.to(imgs.device)[index]
    out["img_i"] = infrared_to_one_channel(out["img_i"], stats)
    return out


class _OneChannelInfrared:
    """collate_fn of a test loader: torchreid's batch, its images turned into one channel
    when all are infrared (a visible-infrared query or gallery holds one modality)."""

    def __init__(self, stats: dict):
        self.stats = stats

    def __call__(self, samples: list[dict]) -> dict:
        batch = default_collate(samples)
        mods = set(batch.get("modality", ()))
        if mods == {INFRARED}:
            batch["img"] = infrared_to_one_channel(batch["img"], self.stats)
        elif len(mods) > 1:
            raise ValueError(f"a test batch mixes modalities {sorted(mods)}; D2RL needs one")
        return batch


class _D2RLStep(D2RLEngine):
    """The CLI engine's step code (:meth:`D2RLEngine.train_step`) on networks and optimisers
    given from outside: only what the step reads is set (one process, no DDP)."""

    def __init__(self, cfg, model, optimizers, device):  # noqa: D107 (no super())
        self.cfg, self.model, self.device = cfg, model, device
        self.optimizers = {"reid": optimizers["model"], **optimizers}
        self.amp = PhaseUpdater.for_device(cfg.SOLVER.AMP, device, self.AMP_PHASES)
        self._vis_batch = None


def _check_visible_infrared(datamanager, cfg) -> None:
    """One visible-infrared source whose images are normalised with ``INPUT.PIXEL_MEAN/STD``.

    Raises:
        ConfigError: otherwise (the message says what to change).
    """
    train_set = datamanager.train_loader.dataset
    if not isinstance(train_set, CrossModalityDataset):
        raise ConfigError(
            f"D2RL trains on one visible-infrared dataset, but the datamanager's training set "
            f"is a {type(train_set).__name__} (sources={datamanager.sources}): build it with "
            "sources='sysu_mm01', 'regdb' or 'regdb_trial_<t>' (one source: torchreid's merge "
            "of several sources drops the modality)"
        )
    norm = [t for t in datamanager.transform_tr.transforms if isinstance(t, Normalize)]
    mean, std = (tuple(norm[0].mean), tuple(norm[0].std)) if norm else (None, None)
    want = (tuple(cfg.INPUT.PIXEL_MEAN), tuple(cfg.INPUT.PIXEL_STD))
    if (mean, std) != want:
        raise ConfigError(
            f"the datamanager normalises with mean {mean}, std {std} but the D2RL config's "
            f"INPUT.PIXEL_MEAN / PIXEL_STD are {want[0]} / {want[1]}: pass norm_mean / norm_std "
            "to the ImageDataManager, or the same values in build_d2rl's opts"
        )


class ImageD2RLEngine(ConfiguredEngine):
    """D2RL's training in torchreid's ``Engine``: ``run(save_dir, max_epoch, start_epoch,
    eval_freq, test_only, print_freq, ...)``, ``test()``, the TensorBoard writer and
    ``model.pth.tar-N`` checkpoints work as for torchreid's own engines.

    Args:
        datamanager: a torchreid ``ImageDataManager`` on one of the plugin's visible-infrared
            datasets (``sources='sysu_mm01'`` | ``'regdb'`` | ``'regdb_trial_<t>'``), with
            ``train_sampler='RandomIdentitySampler'`` and ``num_instances >= 2`` (a batch
            has to hold visible and infrared images of an identity, :func:`d2rl_batch`),
            normalised with the config's ``INPUT.PIXEL_MEAN/STD`` (ImageNet's, torchreid's
            default).
        model: :func:`build_d2rl`'s meta-architecture (``model.cfg`` is the config).
        optimizers: ``{"model": T_F's, "gen": T_I's, "dis": the discriminators'}``; default
            :func:`build_d2rl_optimizers` on the engine's device (the CLI's).
        schedulers: the same keys, torchreid schedulers stepped once per epoch; default (or
            a missing key): the CLI's, stepped after every iteration (T_I and the
            discriminators x ``SOLVER.GAMMA`` at ``SOLVER.STEPS``; T_F's warm-up from
            ``MODEL.D2RL.WARMUP_GEN_ITER`` and x ``SOLVER.REID_GAMMA`` at ``REID_STEPS``).
        use_gpu: torchreid's flag (CUDA when available).

    Registered networks (``register_model``; checkpoints ``save_dir/<name>/model.pth.tar-N``):
    ``model`` = the whole D2RL network (``self.model``: T_F needs T_I to unify a test image
    into ``[RGB; IR]``, so its checkpoint holds both), ``gen`` = T_I, ``dis`` = both
    discriminators.

    ``forward_backward`` = :meth:`D2RLEngine.train_step` on :func:`d2rl_batch` of the batch
    at iteration ``epoch * batches_per_epoch + batch`` (the warm-up phases of
    ``MODEL.D2RL`` count these). ``test()`` ranks with the dataset's SYSU-MM01 / RegDB
    protocol (``TEST.CROSS_MODALITY``), infrared test images as one channel. One process.

    Raises:
        ConfigError: (at construction) another sampler or ``num_instances < 2`` (named), a
            training set that is not one visible-infrared dataset, or another normalisation.
    """

    def __init__(self, datamanager, model, optimizers=None, schedulers=None, use_gpu=True):
        check_identity_sampler(
            datamanager, "D2RL needs visible and infrared images of an identity in one batch"
        )
        _check_visible_infrared(datamanager, model.cfg)
        super().__init__(datamanager, model.cfg, use_gpu)
        cfg = self.cfg
        self.d2rl = model.to(self.device)
        optimizers = optimizers or build_d2rl_optimizers(model, self.device)
        schedulers = dict(schedulers or {})
        for name in ("model", "gen", "dis"):
            if schedulers.get(name) is None:
                opt = optimizers[name]
                schedulers[name] = (
                    reid_lr_scheduler(opt, cfg)
                    if name == "model"
                    else build_iter_scheduler(opt, cfg.SOLVER.STEPS, cfg.SOLVER.GAMMA)
                )
                self._per_iteration.append(schedulers[name])
        for name, net in (("model", model), ("gen", model.gen), ("dis", model.dis)):
            self.register_model(name, net, optimizers[name], schedulers[name])
        self.model, self.optimizer, self.scheduler = model, optimizers["model"], None
        self.step = _D2RLStep(cfg, model, optimizers, self.device)

    def batch(self, data: dict) -> dict:
        """D2RL's batch of a torchreid batch, on the device (:func:`d2rl_batch`)."""
        data = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in data.items()}
        return d2rl_batch(data, self.d2rl.stats)

    def forward_backward(self, data: dict) -> dict[str, float]:
        it = self.iteration()
        losses = self.step.train_step(self.batch(data), it)
        self.step_iteration_schedulers()
        return {k: float(v) for k, v in losses.items()}

    def test_loaders(self, dataset_name, query_loader, gallery_loader) -> dict:
        """The query and gallery loaders with infrared images as one channel, and the
        dataset's ``protocol`` (``sysu_mm01`` | ``regdb``) when it is visible-infrared."""
        dataset = query_loader.dataset
        if not isinstance(dataset, CrossModalityDataset):
            return super().test_loaders(dataset_name, query_loader, gallery_loader)
        collate = _OneChannelInfrared(self.d2rl.stats)
        out = {
            split: DataLoader(
                loader.dataset,
                batch_size=loader.batch_size,
                shuffle=False,
                num_workers=loader.num_workers,
                pin_memory=loader.pin_memory,
                collate_fn=collate,
            )
            for split, loader in (("query", query_loader), ("gallery", gallery_loader))
        }
        return {**out, "protocol": dataset.protocol}
