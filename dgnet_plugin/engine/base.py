"""``IterationEngine``: torchreid's ``Engine`` driven by iterations, with fvcore checkpoints.

torchreid's ``Engine`` keeps the registered networks, optimisers and schedulers
(``register_model``), their modes (``set_model_mode``) and the TensorBoard ``writer``; its
``run`` is epoch based, while GAN re-ID methods schedule everything per iteration. This class
adds the iteration loop (progress bar, per-iteration LR schedules, logging to the console,
``log.txt``, TensorBoard and ``metrics.json``), atomic checkpoints of every network,
optimiser, scheduler, the iteration and the RNG states, ``--resume``, evaluation with the
leaderboard protocol, and a stop on a non-finite loss that leaves the last checkpoint intact.
A method's engine implements :meth:`run_step` (one iteration of its algorithm).

Several processes (torchrun, ``--num-gpus``; see :mod:`.launch`): every rank runs the same
loop on its share of each global batch. Networks start identical (rank 0's parameters and
buffers are broadcast at the start of :meth:`train`, after building and loading); engines
average gradients with ``DistributedDataParallel`` (:meth:`prepare_distributed`). Only
rank 0 writes the console log, ``log.txt``, ``metrics.json``, TensorBoard, the progress
bar, sample grids and checkpoints; logged losses are means over ranks (one ``all_reduce``
per ``LOG_PERIOD``); evaluation extracts features on every rank (a shard each) and ranks
them on rank 0.
"""

from __future__ import annotations

import logging
import os
import time
from types import SimpleNamespace

import torch
from torch.utils.tensorboard import SummaryWriter

from ..data import build_test_sets, load_train_set
from ..data.samplers import per_process_batch
from ..evaluation import evaluate_reid_model, format_results_table
from ..modeling import build_model
from ..modeling.norm import convert_norm
from ..utils import comm
from ..utils import torchreid_compat as tr
from ..utils.checkpoint import Checkpointer, rng_state, set_rng_state
from ..utils.events import JSONWriter, progress_bar
from .optim import restore_impl
from .precision import MixedPrecision, SpeedOptions

logger = logging.getLogger("dgnet_plugin")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; training stopped before writing any checkpoint."""


def resolve_device(name: str) -> torch.device:
    """``MODEL.DEVICE`` as a device; with several processes CUDA means ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"MODEL.DEVICE '{name}' but CUDA is not available; use 'cpu' or 'auto'")
    if name.startswith("cuda") and comm.is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


class IterationEngine(tr.Engine):
    """Base of the package's engines. Builds data, model and test sets from ``cfg``.

    Attributes: ``cfg``, ``device``, ``model_all`` (the meta-architecture), ``model`` (its
    re-ID network, torchreid's convention), ``train_items``, ``num_classes``, ``test_sets``,
    ``checkpointer``, ``iter`` (iterations done), ``amp`` (:class:`MixedPrecision`) and
    ``speed`` (:class:`SpeedOptions`).
    """

    #: The backward/step phases of one iteration (one GradScaler each under fp16).
    AMP_PHASES: tuple[str, ...] = ("main",)

    def __init__(self, cfg, build_test: bool = True):
        self.cfg = cfg
        self.device = resolve_device(cfg.MODEL.DEVICE)
        self.amp = MixedPrecision.for_device(cfg.SOLVER.AMP, self.device, self.AMP_PHASES)
        self.speed = SpeedOptions(cfg, self.device, self.amp)
        self.train_items, self.num_classes = load_train_set(cfg)
        if cfg.MODEL.HEADS.NUM_CLASSES and cfg.MODEL.HEADS.NUM_CLASSES != self.num_classes:
            raise ValueError(
                f"MODEL.HEADS.NUM_CLASSES={cfg.MODEL.HEADS.NUM_CLASSES} but {cfg.DATASETS.NAMES} "
                f"has {self.num_classes} training identities; set it to 0 (automatic)"
            )
        # the global batch must split evenly over the processes: say so before building
        per_process_batch(
            cfg.DATALOADER.IMS_PER_BATCH, comm.get_world_size(), "DATALOADER.IMS_PER_BATCH"
        )
        self.test_sets = build_test_sets(cfg) if build_test else {}
        super().__init__(
            SimpleNamespace(train_loader=None, test_loader=self.test_sets),
            use_gpu=self.device.type == "cuda",
        )
        self.model_all = build_model(cfg, self.num_classes)
        convert_norm(self.model_all.reid, cfg.MODEL.NORM, self.device, comm.get_world_size())
        self.model_all = self.speed.prepare(self.model_all.to(self.device))
        self.model = self.model_all.reid  # torchreid's convention: the network it evaluates
        self.iter = 0
        self.output_dir = cfg.OUTPUT_DIR
        self.metrics = (
            JSONWriter(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))
            if comm.is_main_process()
            else None
        )
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._checkpointer: Checkpointer | None = None
        self._resume_rng: dict | None = None

    # ------------------------------------------------------------------ hooks for subclasses
    def run_step(self, iteration: int) -> dict[str, torch.Tensor]:
        """One iteration of the method; returns the (detached) losses to log."""
        raise NotImplementedError

    def visualize(self, iteration: int) -> None:
        """Write sample images (generative engines)."""

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpointer(self) -> Checkpointer:
        """Checkpoints ``model_all`` plus every registered optimiser and scheduler."""
        if self._checkpointer is None:
            extra = {}
            for name in self.get_model_names():
                if self._optims[name] is not None:
                    extra[f"optimizer_{name}"] = self._optims[name]
                if self._scheds[name] is not None:
                    extra[f"scheduler_{name}"] = self._scheds[name]
            extra.update(self.amp.checkpointables())
            self._checkpointer = Checkpointer(self.model_all, self.output_dir, **extra)
        return self._checkpointer

    def save_checkpoint(self, name: str) -> str | None:
        """Every rank calls it; rank 0 writes ``OUTPUT_DIR/<name>.pth`` (its buffers, which
        the others then copy, and the RNG states of all ranks) and the others wait for it."""
        states = comm.all_gather_object(rng_state())
        comm.broadcast_module(self.model_all, buffers_only=True)
        path = None
        if comm.is_main_process():
            extra = {"rng_per_rank": states} if len(states) > 1 else {}
            path = self.checkpointer.save(name, iteration=self.iter, rng=states[0], **extra)
        comm.synchronize()
        return path

    def save_model(self, epoch, rank1, save_dir, is_best=False):
        """torchreid's hook, routed to the atomic checkpointer (torchreid's own one stores a
        numpy rank-1 that torch >= 2.6 refuses to load)."""
        self.save_checkpoint(f"model_{self.iter:07d}")

    def resume_or_load(self, resume: bool) -> None:
        """``resume``: continue from ``OUTPUT_DIR/last_checkpoint`` (networks, optimisers,
        schedulers, iteration, RNG). Otherwise load ``MODEL.WEIGHTS`` (weights only) if set.

        The RNG states are restored by :meth:`train` just before the first iteration, after
        whatever it builds first (the teacher, DDP wrappers) has drawn its random numbers, so
        a resumed run continues exactly as the uninterrupted one (with the samplers skipping
        the batches already drawn)."""
        ckpt = self.checkpointer
        if resume and ckpt.has_checkpoint():
            extra = ckpt.load(ckpt.get_checkpoint_file())  # every rank reads the same file
            self.iter = int(extra.get("iteration", 0))
            self._resume_rng = extra  # applied when the loop starts (see train)
            for opt in self._optims.values():
                if opt is not None:
                    restore_impl(opt)  # the checkpoint's foreach/fused flags -> this device's
            logger.info("Resumed from %s at iteration %d", ckpt.get_checkpoint_file(), self.iter)
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

    def prepare_distributed(self) -> None:
        """Called by :meth:`train` once rank 0's weights are on every rank: wrap networks in
        DDP here (``TeacherEngine``, ``DGNetEngine``)."""

    # ------------------------------------------------------------------ training loop
    def autocast(self):
        """Autocast in ``SOLVER.AMP``'s dtype on CUDA (bf16 / fp16); a no-op on CPU."""
        return self.amp.autocast()

    def to_device(self, batch: dict) -> dict:
        """Tensors to the device without blocking (pinned batches), images channels_last
        when ``MODEL.CHANNELS_LAST`` is on."""
        return {
            k: v.to(self.device, non_blocking=True, memory_format=self.speed.memory_format(v))
            if torch.is_tensor(v)
            else v
            for k, v in batch.items()
        }

    def _period(self, period: int, it: int) -> bool:
        return period > 0 and it % period == 0

    def train(self) -> dict:
        """Run from ``self.iter`` to ``SOLVER.MAX_ITER``; evaluate and save at the end.

        Raises:
            NonFiniteLossError: a loss became NaN/Inf; no checkpoint was written after it.
        """
        cfg = self.cfg
        max_iter = cfg.SOLVER.MAX_ITER
        main = comm.is_main_process()
        self.writer = SummaryWriter(log_dir=self.output_dir) if main else None
        comm.broadcast_module(self.model_all)  # identical start (after building / loading)
        self.prepare_distributed()
        if self._resume_rng is not None:
            self._restore_rng(self._resume_rng)
            self._resume_rng = None
        self.set_model_mode("train")
        logger.info(
            "Training %s from iteration %d to %d on %d process(es), %d image(s) each per step",
            type(self).__name__,
            self.iter,
            max_iter,
            comm.get_world_size(),
            cfg.DATALOADER.IMS_PER_BATCH // comm.get_world_size(),
        )
        t0, start = time.perf_counter(), self.iter
        bar = progress_bar(
            total=max_iter, initial=self.iter, dynamic_ncols=True, desc="train", disable=not main
        )
        try:
            while self.iter < max_iter:
                losses = self.run_step(self.iter)
                for sched in self._scheds.values():
                    if sched is not None:
                        sched.step()
                self.iter += 1
                bar.update(1)
                self._accumulate(losses)
                it = self.iter
                last = it == max_iter
                if self._period(cfg.LOG_PERIOD, it) or last:
                    self._log(bar, (time.perf_counter() - t0) / max(1, it - start))
                if self._period(cfg.VIS.PERIOD, it) and not last and main:
                    self.visualize(it)
                if self._period(cfg.SOLVER.CHECKPOINT_PERIOD, it) and not last:
                    self._log(bar, None)  # the finiteness check runs before every save
                    self.save_checkpoint(f"model_{it:07d}")
                if self._period(cfg.TEST.EVAL_PERIOD, it) and not last:
                    self.test()
                    self.set_model_mode("train")
        finally:
            bar.close()
        self.save_checkpoint("model_final")
        if main:
            self.visualize(self.iter)
        results = self.test()
        if self.writer is not None:
            self.writer.close()
        return results

    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            v = v.detach().float()
            self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._count += 1

    def _log(self, bar, sec_per_iter: float | None) -> None:
        """Check the losses accumulated since the last call and write their means over the
        iterations and the ranks. The only device synchronisation of the loop (one
        ``all_reduce`` of the stacked sums and one ``tolist`` per ``LOG_PERIOD``); every rank
        checks the same global means, so a NaN stops all ranks together."""
        if not self._sums:
            return
        names = list(self._sums)
        values = comm.all_reduce_mean(torch.stack([self._sums[k] for k in names])).tolist()
        means = {k: v / self._count for k, v in zip(names, values)}
        bad = [k for k, v in means.items() if v != v or v in (float("inf"), float("-inf"))]
        self._sums, self._count = {}, 0
        if bad:
            last = self.checkpointer.get_checkpoint_file() or "none written yet"
            raise NonFiniteLossError(
                f"loss {', '.join(repr(b) for b in bad)} became NaN/Inf by iteration {self.iter}; "
                f"stopped without saving. Last good checkpoint: {last}. Lower the learning rates "
                "or check the data, then --resume."
            )
        if sec_per_iter is None or not comm.is_main_process():
            return
        record = {"iteration": self.iter, "time": sec_per_iter, **means, **self.amp.scales()}
        for name in self.get_model_names():
            if self._optims[name] is not None:
                record[f"lr_{name}"] = self._optims[name].param_groups[-1]["lr"]
        self.metrics.write(record)
        for k, v in record.items():
            if k != "iteration":
                self.writer.add_scalar(f"train/{k}", v, self.iter)
        bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:6]}, refresh=False)
        logger.info(
            "iter %d/%d  %s  %.3f s/it",
            self.iter,
            self.cfg.SOLVER.MAX_ITER,
            "  ".join(f"{k}={v:.4f}" for k, v in means.items()),
            sec_per_iter,
        )

    # ------------------------------------------------------------------ evaluation
    def evaluate_model(self, model) -> dict:
        return evaluate_reid_model(
            model, self.test_sets, self.device, self.cfg.TEST, self.output_dir
        )

    def test(self, extra_rows: dict | None = None) -> dict:
        """Evaluate ``model`` (the re-ID network) on ``DATASETS.TESTS``; print the table, write
        ``metrics.json`` and TensorBoard. Returns ``{dataset: {Rank-1, ..., mINP}}`` (%).
        Every rank calls it (features are extracted in shards) and gets the results; rank 0
        writes them."""
        comm.broadcast_module(self.model_all, buffers_only=True)  # rank 0's BN statistics
        self.set_model_mode("eval")
        results = self.evaluate_model(self.model)
        if not comm.is_main_process():
            return results
        rows = {type(self.model).__name__: results, **(extra_rows or {})}
        logger.info("Evaluation at iteration %d:\n%s", self.iter, format_results_table(rows))
        record = {"iteration": self.iter}
        for ds, m in results.items():
            for k, v in m.items():
                record[f"{ds}/{k}"] = v
                if self.writer is not None:
                    self.writer.add_scalar(f"test/{ds}/{k}", v, self.iter)
        self.metrics.write(record)
        return results
