"""``IterationTrainer``: the method-agnostic trainer every engine builds on.

It builds what any stage needs from ``cfg`` (device, precision, the training images, the
meta-architecture, and test sets when the model has a re-ID network), keeps the optimisers
and schedulers of each update phase (``register_optimizer``), checkpoints them atomically
with the iteration and RNG states (``--resume`` is an exact continuation), and assembles the
hooks of :mod:`.hooks` from the config. A method's engine implements :meth:`run_step` (one
iteration of its algorithm) and, if it draws samples, :meth:`visualize`.

Why not torchreid's ``Engine``: its ``run()`` drives *epochs* and calls ``train(epoch,
max_epoch, writer, ...)`` / ``test(...)`` with one optimiser per model; GAN re-ID methods
schedule everything per *iteration*, with several update phases per iteration (each with its
own optimisers, GradScaler and DDP wrapper), and run stages without labels or evaluation.
Inheriting it only in name left a ``run()`` that failed on our engines, so we do not: torchreid
serves what it does well (datasets, ``build_model``, optimisers and LR schedulers, samplers,
metrics, re-ranking and ranked-list pictures) through :mod:`dgnet_plugin.utils.torchreid_compat`.

Several processes (torchrun, ``--num-gpus``; see :mod:`.launch`): every rank runs the same
loop on its share of each global batch. Networks start identical (rank 0's parameters and
buffers are broadcast at the start of :meth:`train`, after building and loading); gradients
are averaged over processes, by ``DistributedDataParallel`` wrappers where an engine makes
them (:meth:`ddp`, one per update phase, in :meth:`prepare_distributed`: DG-Net, IDE) and
otherwise by ``PhaseUpdater.backward_step`` before each optimiser step (one
``all_reduce`` of the flattened gradients). Only rank 0 writes the console log,
``log.txt``, ``metrics.json``, TensorBoard, the progress bar, sample grids and checkpoints;
evaluation extracts features on every rank (a shard each) and ranks them on rank 0.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter

from ..config import ConfigError
from ..data import build_test_sets, build_train_loader, load_train_set
from ..data.samplers import per_process_batch
from ..evaluation import evaluate_reid_model, format_results_table
from ..modeling import build_model
from ..modeling.norm import convert_norm
from ..utils import comm
from ..utils import torchreid_compat as tr
from ..utils.checkpoint import (
    Checkpointer,
    NonFiniteStateError,
    first_non_finite,
    newest_complete_checkpoint,
    rng_state,
    set_rng_state,
)
from ..utils.events import JSONWriter, drop_records_after
from ..utils.visualization import eval_mode, save_grid
from . import hooks
from .device import resolve_device
from .divergence import DivergenceGuard
from .hooks import NonFiniteLossError
from .optim import restore_impl
from .precision import PhaseUpdater, SpeedOptions
from .train_loop import TrainerBase

logger = logging.getLogger("dgnet_plugin")

__all__ = ["IterationTrainer", "NonFiniteLossError", "resolve_device"]


class IterationTrainer(TrainerBase):
    """Base of the package's engines. Builds data, model and (for re-ID models) test sets.

    Attributes: ``cfg``, ``device``, ``model`` (the meta-architecture; its re-ID network,
    when it has one, is ``model.reid``), ``train_items``, ``num_classes``, ``test_sets``
    (empty when the model has no re-ID network), ``optimizers`` / ``schedulers`` (by update
    phase name), ``checkpointer``, ``iter`` (iterations done), ``amp``
    (:class:`PhaseUpdater`), ``speed`` (:class:`SpeedOptions`), ``results`` (the final
    evaluation).

    Class attributes a method's engine sets:
        REQUIRES: attributes the meta-architecture must have (checked at build time, with a
            message naming ``ENGINE.NAME`` and ``MODEL.META_ARCHITECTURE``).
        AMP_PHASES: the backward/step phases of one iteration (one GradScaler each, fp16).
        SOLVER_KEYS: the ``SOLVER`` keys or sub-nodes (dotted, e.g. ``SOLVER.GEN``) that
            this engine's optimisers and schedules read; a ``--resume`` refuses a change of
            these only (:func:`~dgnet_plugin.engine.run.check_resume_config`). ``None``: all
            of ``SOLVER``. A translator stage sets it, so that its run resumes when only the
            re-ID stage's ``SOLVER.REID`` / ``STEPS`` changed
            (:data:`dgnet_plugin.offline_augmentation.config.GAN_SOLVER_KEYS`).
    """

    REQUIRES: tuple[str, ...] = ()
    AMP_PHASES: tuple[str, ...] = ("main",)
    SOLVER_KEYS: tuple[str, ...] | None = None

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.has_reid = self.check_meta_architecture(cfg)  # before any data is read
        self.device = resolve_device(cfg.MODEL.DEVICE)
        self.amp = PhaseUpdater.for_device(cfg.SOLVER.AMP, self.device, self.AMP_PHASES)
        self.speed = SpeedOptions(cfg, self.device, self.amp)
        self.train_items, self.num_classes = load_train_set(cfg)
        if cfg.MODEL.HEADS.NUM_CLASSES and cfg.MODEL.HEADS.NUM_CLASSES != self.num_classes:
            raise ConfigError(
                f"MODEL.HEADS.NUM_CLASSES={cfg.MODEL.HEADS.NUM_CLASSES} but {cfg.DATASETS.NAMES} "
                f"has {self.num_classes} training identities; set it to 0 (automatic)"
            )
        # the global batch must split evenly over the processes: say so before building
        per_process_batch(cfg.SOLVER.IMS_PER_BATCH, comm.get_world_size(), "SOLVER.IMS_PER_BATCH")
        self.test_sets = self.build_test_loader(cfg) if self.has_reid and cfg.DATASETS.TESTS else {}
        model = self.build_model(cfg)
        if self.has_reid:
            convert_norm(model.reid, cfg.MODEL.NORM, self.device, comm.get_world_size())
        self.model = self.speed.prepare(model.to(self.device))
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, object] = {}
        self.output_dir = cfg.OUTPUT_DIR
        self.metrics = (
            JSONWriter(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))
            if comm.is_main_process()
            else None
        )
        self.writer: SummaryWriter | None = None
        self.results: dict = {}
        self._checkpointer: Checkpointer | None = None
        self._resume_rng: dict | None = None
        self.data = None  # the training batches: build_train_loader, at the start of train()
        self._evaluator = None  # build_evaluator's, on the first evaluation
        for name, (opt, sched) in self.build_optimizers(cfg).items():
            self.register_optimizer(name, opt, sched)

    @classmethod
    def check_meta_architecture(cls, cfg) -> bool:
        """Check that ``MODEL.META_ARCHITECTURE`` provides :attr:`REQUIRES`; returns whether
        it has a re-ID network (``reid``), which decides evaluation.

        Raises:
            ConfigError: an attribute is missing; names both keys and what is missing.
        """
        from ..modeling.meta_arch import META_ARCH_REGISTRY
        from ..utils.registry import lookup

        arch = lookup(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, "MODEL.META_ARCHITECTURE")
        provides = set(getattr(arch, "PROVIDES", ()))
        missing = [r for r in cls.REQUIRES if r not in provides]
        if missing:
            raise ConfigError(
                f"ENGINE.NAME '{cfg.ENGINE.NAME}' needs a meta-architecture with "
                f"{', '.join(missing)}, which MODEL.META_ARCHITECTURE "
                f"'{cfg.MODEL.META_ARCHITECTURE}' does not provide (it provides: "
                f"{', '.join(sorted(provides)) or 'nothing declared'}); pair the engine with "
                "its method's meta-architecture"
            )
        return "reid" in provides

    # ------------------------------------------------------------------ seams (fastreid's)
    def build_model(self, cfg) -> nn.Module:
        """The meta-architecture of ``MODEL.META_ARCHITECTURE`` for ``num_classes``
        identities (moved to the device by the caller)."""
        return build_model(cfg, self.num_classes)

    def build_test_loader(self, cfg) -> dict:
        """``{dataset: {query, gallery loaders[, protocol]}}`` of ``DATASETS.TESTS``."""
        return build_test_sets(cfg)

    def build_optimizers(self, cfg) -> dict:
        """``{phase: (optimizer, per-iteration scheduler or None)}`` of the engine's update
        phases, registered with :meth:`register_optimizer` once the model is built
        (default: none; an engine overrides it)."""
        return {}

    def build_train_loader(self, start: int):
        """An endless iterator of training batches from iteration ``start`` on (the batches
        of iterations ``0 .. start - 1`` are skipped, so ``--resume`` continues the same
        sequence). Built once, when :meth:`train` starts (after :meth:`resume_or_load` has
        set the iteration). Default: one stream of ``SOLVER.IMS_PER_BATCH`` images of
        the training set (:func:`~dgnet_plugin.data.build_train_loader`)."""
        return build_train_loader(self.cfg, self.train_items, start=start)

    def build_evaluator(self):
        """``f(model) -> {dataset: metrics}``: the leaderboard evaluation of a re-ID network
        on the test sets (with the method's :meth:`query_transform`)."""

        def evaluate(model) -> dict:
            return evaluate_reid_model(
                model,
                self.test_sets,
                self.device,
                self.cfg.TEST,
                self.output_dir,
                self.query_transform(self.cfg, model),
            )

        return evaluate

    # ------------------------------------------------------------------ for engines
    def run_step(self, iteration: int) -> dict[str, torch.Tensor]:
        """One iteration: the next batch of :meth:`build_train_loader`'s iterator (built once,
        by :meth:`train`, or here when a step is run on its own), on the device, through
        :meth:`train_step`."""
        if self.data is None:
            self.data = self.build_train_loader(iteration)
        return self.train_step(self.to_device(next(self.data)), iteration)

    def train_step(self, batch, iteration: int) -> dict[str, torch.Tensor]:
        """One iteration of the method's algorithm (every update phase) on ``batch`` (on
        the device); returns the (detached) losses to log."""
        raise NotImplementedError

    def visualize(self, iteration: int) -> None:
        """Write sample images (generative engines override it; then :class:`~.hooks.
        SampleGrids` is registered). Called by :meth:`draw_samples`: the model is in eval
        mode and no gradient is recorded; write each grid with :meth:`save_samples`."""

    def draw_samples(self, iteration: int) -> None:
        """:meth:`visualize` with the model in eval mode under ``no_grad`` (restored after,
        also on error): what :class:`~.hooks.SampleGrids` calls."""
        with eval_mode(self.model):
            self.visualize(iteration)

    def save_samples(
        self,
        name: str,
        rows: list[torch.Tensor],
        iteration: int,
        tag: str | None = None,
        *,
        mean=None,
        std=None,
    ) -> torch.Tensor:
        """Write ``rows`` (each ``(N, 3, H, W)``, normalised with ``mean`` / ``std``, default
        ``INPUT.PIXEL_MEAN`` / ``PIXEL_STD``) as one grid to
        ``OUTPUT_DIR/images/<name>_<iteration:08d>.jpg`` and to TensorBoard under ``tag``
        (default ``name``); returns the ``(3, H', W')`` grid in [0, 1]."""
        mean = self.cfg.INPUT.PIXEL_MEAN if mean is None else mean
        std = self.cfg.INPUT.PIXEL_STD if std is None else std
        path = os.path.join(self.output_dir, "images", f"{name}_{iteration:08d}.jpg")
        grid = save_grid(rows, path, mean, std)
        if self.writer is not None:
            self.writer.add_image(tag or name, grid, iteration)
        return grid

    def step_phase(
        self,
        phase: str,
        terms: dict,
        weights: dict | None = None,
        optimizers=None,
        total: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """One update phase under the loss rule: the meta-architecture's unweighted
        ``terms`` (``{name: scalar}``) weighted by ``weights`` (``{name: w}``; a missing name
        weighs 1) and summed, the gradients of the phase's ``optimizers`` (default: the one
        registered as ``phase``) zeroed, one backward (scaled under fp16 with the GradScaler
        of ``phase`` when it is one of :attr:`AMP_PHASES`, else ``main``'s; gradients
        averaged over processes) and one step of each. Returns the detached unweighted terms
        (what the log shows), and the weighted sum under the name ``total`` when given."""
        weights = weights or {}
        loss = sum(weights.get(k, 1.0) * v for k, v in terms.items())
        opts = list(optimizers) if optimizers is not None else [self.optimizers[phase]]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        amp_phase = phase if phase in self.AMP_PHASES else self.AMP_PHASES[0]
        self.amp.backward_step(loss, *opts, phase=amp_phase)
        logged = {k: v.detach() for k, v in terms.items()}
        if total:
            logged[total] = loss.detach()
        return logged

    def register_optimizer(self, name: str, optimizer, scheduler=None) -> None:
        """The optimiser (and per-iteration scheduler) of update phase ``name``: logged as
        ``lr_<name>``, checkpointed as ``optimizer_<name>`` / ``scheduler_<name>``, stepped
        by the :class:`~.hooks.LRScheduler` hook."""
        self.optimizers[name] = optimizer
        if scheduler is not None:
            self.schedulers[name] = scheduler

    def ddp(self, module: nn.Module, broadcast_buffers: bool = False) -> nn.Module:
        """``module`` in a ``DistributedDataParallel`` wrapper when several processes run,
        else ``module`` itself. ``broadcast_buffers=False`` (default): each rank keeps its
        batch-norm statistics, rank 0's are saved and evaluated; ``True``: rank 0's buffers
        are copied to every rank before each forward (DDP's default)."""
        if not comm.is_distributed():
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.amp.ddp_params.update(id(p) for p in module.parameters())
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=broadcast_buffers)

    def prepare_distributed(self) -> None:
        """Called by :meth:`train` once rank 0's weights are on every rank: wrap the update
        phases with :meth:`ddp` here."""

    def autocast(self):
        """Autocast in ``SOLVER.AMP``'s dtype on CUDA (bf16 / fp16); a no-op on CPU."""
        return self.amp.autocast()

    def to_device(self, batch):
        """Tensors to the device without blocking (pinned batches), images channels_last
        when ``MODEL.CHANNELS_LAST`` is on; dicts, tuples and lists of them recursively."""
        if torch.is_tensor(batch):
            return batch.to(
                self.device, non_blocking=True, memory_format=self.speed.memory_format(batch)
            )
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    # ------------------------------------------------------------------ hooks
    def build_hooks(self) -> list:
        """The hooks of a run, in order (see :mod:`.hooks`); override to add a method's own."""
        cfg = self.cfg
        d = cfg.SOLVER.DIVERGENCE
        return [
            hooks.LRScheduler(),
            hooks.MetricsWriter(
                cfg.LOG_PERIOD, DivergenceGuard(d.MAX_LOSS, d.GROWTH_FACTOR, d.WINDOW)
            ),
            hooks.PeriodicCheckpointer(cfg.SOLVER.CHECKPOINT_PERIOD),
            hooks.SampleGrids(cfg.VIS.PERIOD) if self._draws_samples() else None,
            hooks.ReIDEvaluation(cfg.TEST.EVAL_PERIOD) if self.has_reid else None,
            hooks.StopOnSignal(check_period=cfg.LOG_PERIOD),
        ]

    def _draws_samples(self) -> bool:
        return type(self).visualize is not IterationTrainer.visualize

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpointer(self) -> Checkpointer:
        """Checkpoints ``model`` plus every registered optimiser, scheduler and GradScaler."""
        if self._checkpointer is None:
            extra = {}
            for name, opt in self.optimizers.items():
                extra[f"optimizer_{name}"] = opt
                if name in self.schedulers:
                    extra[f"scheduler_{name}"] = self.schedulers[name]
            extra.update(self.amp.checkpointables())
            keep = self.cfg.SOLVER.CHECKPOINT_KEEP or None
            self._checkpointer = Checkpointer(
                self.model, self.output_dir, max_to_keep=keep, **extra
            )
        return self._checkpointer

    def save_checkpoint(self, name: str) -> str | None:
        """Every rank calls it; after the hooks' ``before_checkpoint`` checks (the losses are
        finite) and the check that the weights, optimiser and GradScaler states are finite
        (on every rank, so all ranks stop together), rank 0 writes ``OUTPUT_DIR/<name>.pth``
        atomically (its buffers, which the others then copy, and the RNG states of all ranks)
        and the others wait for it.

        Raises:
            NonFiniteLossError: a loss became NaN/Inf (nothing written).
            NonFiniteStateError: a weight or optimiser state holds NaN/Inf (nothing written;
                the message names the entry and the last finite checkpoint).
            CheckpointSaveError: the file could not be written; the previous one is intact.
        """
        self.before_checkpoint()
        states = {"model": self.model, **self.checkpointer.checkpointables}
        bad = first_non_finite({k: v.state_dict() for k, v in states.items()})
        if bad is not None:
            last = newest_complete_checkpoint(self.output_dir)
            raise NonFiniteStateError(
                f"not saving {name}.pth at iteration {self.iter}: '{bad}' holds NaN/Inf; the "
                f"last checkpoint with finite weights is {last.path if last else 'none'}. "
                "Lower the learning rates or check the data, then --resume"
            )
        states = comm.all_gather_object(rng_state())
        comm.broadcast_module(self.model, buffers_only=True)
        path = None
        if comm.is_main_process():
            extra = {"rng_per_rank": states} if len(states) > 1 else {}
            path = self.checkpointer.save(name, iteration=self.iter, rng=states[0], **extra)
        comm.synchronize()
        return path

    def resume_or_load(self, resume: bool) -> None:
        """``resume``: continue from the newest complete checkpoint of ``OUTPUT_DIR`` (even
        when ``last_checkpoint`` lags behind it: networks, optimisers, schedulers, iteration,
        RNG); ``metrics.json`` records written after it are dropped, so no iteration appears
        twice. Otherwise load ``MODEL.WEIGHTS`` (weights only) if set.

        The RNG states are restored by :meth:`train` just before the first iteration, after
        whatever it builds first (the teacher, DDP wrappers) has drawn its random numbers, so
        a resumed run continues exactly as the uninterrupted one (with the samplers skipping
        the batches already drawn)."""
        ckpt = self.checkpointer
        newest = newest_complete_checkpoint(self.output_dir) if resume else None
        if newest is not None:
            extra = ckpt.load(newest.path)  # every rank reads the same file
            self.iter = int(extra.get("iteration", 0))
            self._resume_rng = extra  # applied when the loop starts (see train)
            for opt in self.optimizers.values():
                restore_impl(opt)  # the checkpoint's foreach/fused flags -> this device's
            if self.metrics is not None:
                drop_records_after(self.metrics.path, self.iter)
            logger.info("Resumed from %s at iteration %d", newest.path, self.iter)
        elif self.cfg.MODEL.WEIGHTS:
            ckpt.load(self.cfg.MODEL.WEIGHTS, checkpointables=[])
            logger.info("Loaded weights from %s", self.cfg.MODEL.WEIGHTS)
        elif resume:
            logger.info("No checkpoint in %s; starting from scratch", self.output_dir)

    def _restore_rng(self, extra: dict) -> None:
        """The RNG states of the checkpoint: each rank its own when the number of processes is
        unchanged; otherwise rank 0's state, and the other ranks a seed of their own."""
        rank, world = comm.get_rank(), comm.get_world_size()
        per_rank = extra.get("rng_per_rank") or [extra.get("rng")]
        if len(per_rank) == world and per_rank[rank] is not None:
            set_rng_state(per_rank[rank])
        elif rank == 0 and per_rank[0] is not None:
            set_rng_state(per_rank[0])
        else:
            tr.utils.set_random_seed(self.cfg.SEED + rank + 1009 * self.iter)

    # ------------------------------------------------------------------ training
    def train(self) -> dict:
        """Run from ``self.iter`` to ``SOLVER.MAX_ITER`` with :meth:`build_hooks`' hooks
        (final checkpoint, grids and evaluation at the end). Returns the final evaluation
        ``{dataset: {Rank-1, ..., mINP}}`` (empty for a model without a re-ID network).

        Raises:
            NonFiniteLossError: a loss became NaN/Inf; no checkpoint was written after it.
        """
        if not self.hooks:
            self.register_hooks(self.build_hooks())
        main = comm.is_main_process()
        self.writer = SummaryWriter(log_dir=self.output_dir) if main else None
        comm.broadcast_module(self.model)  # identical start (after building / loading)
        self.prepare_distributed()
        if self._resume_rng is not None:
            self._restore_rng(self._resume_rng)
            self._resume_rng = None
        if self.data is None and self.iter < self.cfg.SOLVER.MAX_ITER:
            self.data = self.build_train_loader(self.iter)
        self.model.train()
        logger.info(
            "Training %s from iteration %d to %d on %d process(es), %d image(s) each per step",
            type(self).__name__,
            self.iter,
            self.cfg.SOLVER.MAX_ITER,
            comm.get_world_size(),
            self.cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size(),
        )
        try:
            super().train(self.iter, self.cfg.SOLVER.MAX_ITER)
        finally:
            if self.writer is not None:
                self.writer.close()
        return self.results

    # ------------------------------------------------------------------ evaluation
    @classmethod
    def query_transform(cls, cfg, model):
        """The method's query-side function of the ``(Q, D)`` query features of ``model``
        (:func:`~dgnet_plugin.evaluation.evaluate_reid_model`'s ``query_transform``), or
        ``None`` (default: the features as extracted). A classmethod: ``--eval-only`` calls
        it without building the trainer."""
        return None

    def evaluate_model(self, model) -> dict:
        """:meth:`build_evaluator`'s evaluation of ``model`` (built once)."""
        if self._evaluator is None:
            self._evaluator = self.build_evaluator()
        return self._evaluator(model)

    def row_name(self) -> str:
        """The evaluated model's name in the results table (default: the re-ID network's
        class name)."""
        return type(self.model.reid).__name__

    def extra_rows(self) -> dict:
        """More rows of the evaluation table (e.g. DG-Net's teacher); default none. Called on
        every rank (an evaluation extracts features in shards)."""
        return {}

    def test(self) -> dict:
        """Evaluate ``model.reid`` on ``DATASETS.TESTS``; print the table, write
        ``metrics.json`` and TensorBoard. Returns ``{dataset: {Rank-1, ..., mINP}}`` (%).
        Every rank calls it (features are extracted in shards) and gets the results; rank 0
        writes them.

        Raises:
            ConfigError: the model has no re-ID network, or ``DATASETS.TESTS`` is empty.
        """
        if not self.has_reid or not self.test_sets:
            raise ConfigError(
                f"MODEL.META_ARCHITECTURE '{self.cfg.MODEL.META_ARCHITECTURE}' has no re-ID "
                "network to evaluate, or DATASETS.TESTS is empty"
            )
        comm.broadcast_module(self.model, buffers_only=True)  # rank 0's BN statistics
        self.model.eval()
        extra = self.extra_rows()  # every rank: they may extract features in shards too
        reid = self.model.reid
        results = self.evaluate_model(reid)
        if comm.is_main_process():
            rows = {self.row_name(): results, **extra}
            report_results(rows, results, self.iter, self.metrics, self.writer)
        return results


def report_results(rows: dict, results: dict, iteration: int, metrics=None, writer=None) -> None:
    """Rank 0's report of an evaluation: log the table of ``rows`` (``{model: {dataset:
    metrics}}``), append ``results`` (the evaluated model's ``{dataset: metrics}``) to
    ``metrics`` (a :class:`~dgnet_plugin.utils.events.JSONWriter` of ``metrics.json``) as
    ``{iteration, "<dataset>/<metric>": value}`` and to TensorBoard's ``writer`` as
    ``test/<dataset>/<metric>``. Used by :meth:`IterationTrainer.test` and ``--eval-only``
    (:func:`~dgnet_plugin.engine.evaluation.evaluate_checkpoint`)."""
    logger.info("Evaluation at iteration %d:\n%s", iteration, format_results_table(rows))
    record = {"iteration": iteration}
    for ds, m in results.items():
        for k, v in m.items():
            record[f"{ds}/{k}"] = v
            if writer is not None:
                writer.add_scalar(f"test/{ds}/{k}", v, iteration)
    if metrics is not None:
        metrics.write(record)
