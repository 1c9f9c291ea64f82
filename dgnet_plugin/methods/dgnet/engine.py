"""The DG-Net engine: Algorithm of Zheng et al. (CVPR 2019), one iteration per ``run_step``."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from ...data import build_pair_streams
from ...data.pairs import ImageListDataset
from ...data.transforms import build_transforms
from ...engine import ENGINE_REGISTRY, HookBase, IterationTrainer
from ...engine.optim import build_adam, build_iter_scheduler, build_reid_optimizer
from ...utils import comm
from .appearance import combine_query_features
from .generation.quality import reconstruction_ssim, swap_measures
from .generation.swap import save_swap_grid
from .schedule import DGNET_LOSS_TERMS, dgnet_loss_weights
from .teacher import init_appearance_encoder, load_teacher, uses_teacher

logger = logging.getLogger("dgnet_plugin")


def teacher_dropout_on(cfg, iteration: int) -> bool:
    """Whether the teacher's dropout layers are in training mode at ``iteration`` (0-based):
    from ``MODEL.TEACHER.DROPOUT_AFTER`` on; never when it is 0 or negative."""
    after = cfg.MODEL.TEACHER.DROPOUT_AFTER
    return after > 0 and iteration >= after


@ENGINE_REGISTRY.register()
class DGNetEngine(IterationTrainer):
    """Update phases (``register_optimizer``): ``model`` = Ea (SGD), ``gen`` = Es + G + MLPs
    (Adam), ``dis`` = D (Adam), each with a per-iteration MultiStepLR.

    Several processes: ``DistributedDataParallel``, one wrapper per update phase, since each
    phase has its own backward and optimisers: D (called through its wrapper for the fake and
    the real images of the D update), and Ea + Es + G (:class:`~dgnet_plugin.methods.dgnet.
    meta_arch.GeneratorPhase`, whose forward is step 1). The gradients of each phase are
    averaged during its backward, overlapped with it, before its optimisers step. What makes
    plain DDP (no ``find_unused_parameters``) work here: every parameter of a phase gets a
    gradient at every iteration (D through both LSGAN terms; Ea, Es and G through the terms
    that are always computed, weight 0 included, as in the official code: see
    ``DGNet.generator_losses``); the frozen copies (Ea', D', Es' as ``functional_call`` with
    detached parameters) run on the bare modules, outside the wrappers, and give the
    parameters no gradient; the later trainable calls of the step (Es and Ea on the generated
    images, the cycle decode) use the bare modules too and meet the wrapper's forward in the
    same backward, where each parameter's gradient is accumulated once; the regulariser's
    ``torch.autograd.grad`` is taken with respect to the real images only, so no parameter
    hook fires before the D backward. Buffers are not broadcast at each forward
    (``broadcast_buffers=False``): each process keeps its batch-norm statistics, rank 0's are
    saved and evaluated. The random choice between the trainable and the frozen Es for the
    structure-code reconstruction is drawn from ``SEED`` and the iteration, the same on every
    rank. Under fp16 the D update and the G + Ea update have one GradScaler each.
    """

    REQUIRES = ("reid", "gen", "dis")
    AMP_PHASES = ("dis", "gen")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.teacher = None
        self._teacher_results = None
        self._display = None
        self._phases = {"gen": self.model, "dis": None}  # what each phase calls (DDP wrappers)
        if self.speed.compile:
            self.model.compile_networks()

    def build_optimizers(self, cfg) -> dict:
        m, s, dev = self.model, cfg.SOLVER, self.device
        opt_reid = build_reid_optimizer(cfg, m.reid, ["classifier", "classifier_fine"], dev)
        opt_gen, opt_dis = build_adam(m.gen, s.GEN, dev), build_adam(m.dis, s.DIS, dev)
        return {
            "model": (opt_reid, build_iter_scheduler(opt_reid, s.STEPS, s.REID_GAMMA)),
            "gen": (opt_gen, build_iter_scheduler(opt_gen, s.STEPS, s.GAMMA)),
            "dis": (opt_dis, build_iter_scheduler(opt_dis, s.STEPS, s.GAMMA)),
        }

    def prepare_distributed(self) -> None:
        """With several processes, one DDP wrapper per update phase (see the class doc)."""
        if comm.is_distributed():
            self._phases = {
                "gen": self.ddp(self.model.generator_phase()),
                "dis": self.ddp(self.model.dis),
            }

    def build_hooks(self) -> list:
        """The core's hooks, then :class:`GenerationQuality` (after the final evaluation)."""
        return [
            *super().build_hooks(),
            GenerationQuality(period=self.cfg.VIS.QUALITY_PERIOD),
        ]

    @classmethod
    def query_transform(cls, cfg, model):
        """DG-Net's query side: ``[f_prim, TEST.ALPHA * f_fine]``
        (:func:`~.appearance.combine_query_features`); models of one part (the teacher)
        unchanged."""
        parts = tuple(getattr(model, "feature_parts", ()))
        return lambda q: combine_query_features(q, parts or (q.shape[1],), cfg.TEST.ALPHA)

    def set_teacher(self, teacher) -> None:
        """Use ``teacher`` (frozen, on the device) for the primary-feature term."""
        self.teacher = self.speed.prepare(teacher)

    def train(self) -> dict:
        if uses_teacher(self.cfg) and self.teacher is None:
            self.set_teacher(load_teacher(self.cfg, self.num_classes, self.device))
            fresh = self.iter == 0 and not self.cfg.MODEL.WEIGHTS
            if self.cfg.MODEL.TEACHER.INIT_EA and fresh:
                init_appearance_encoder(self.model.reid, self.teacher)
        return super().train()

    def build_train_loader(self, start: int):
        """``(a, b)``: the two streams of positive pairs (:func:`~dgnet_plugin.data.
        build_pair_streams`), zipped."""
        a, b = build_pair_streams(self.cfg, self.train_items, start=start)
        return zip(a, b, strict=False)

    def train_step(self, batch: tuple[dict, dict], iteration: int) -> dict[str, torch.Tensor]:
        """The whole iteration (D update, then G + Ea update) on ``batch`` = the two streams'
        ``(a, b)`` batches on the device (see :class:`~.meta_arch.DGNet`); returns the
        detached loss terms. Also called by torchreid's engine
        (:class:`dgnet_plugin.torchreid.ImageDGNetEngine`)."""
        a, b = batch
        weights = dgnet_loss_weights(self.cfg.LOSS, iteration)
        opt = self.optimizers
        phase = self._phases  # DDP wrappers with several processes (gradient averaging)

        # 1. Encode both streams (Ea, Es) and decode every image the losses need.
        with self.autocast():
            out = phase["gen"](a, b)

        # 2. Update D on the detached cross-identity images against the real ones.
        with self.autocast():
            d_losses = self.model.discriminator_losses(out, dis=phase["dis"])
        gan = {k: self.cfg.LOSS.GAN for k in d_losses}
        d_logged = self.step_phase("dis", d_losses, gan)

        # 3. Update G and Ea together on the weighted sum (adversarial term: the new D).
        with self.autocast():
            g_losses = self.model.generator_losses(
                out,
                weights,
                self.teacher,
                self.cfg.MODEL.TEACHER.TRAIN_BN,
                reencode=self._shared_uniform(iteration) < self.cfg.LOSS.STRUCTURE_ENCODER_AGAIN,
                teacher_dropout=teacher_dropout_on(self.cfg, iteration),
            )
        g_logged = self.step_phase(
            "gen", g_losses, weights, [opt["gen"], opt["model"]], total="total"
        )
        logged = {k: g_logged[k] for k in DGNET_LOSS_TERMS if k in g_logged}
        logged.update(d_logged)
        logged["total"] = g_logged["total"]
        return logged

    def _shared_uniform(self, iteration: int) -> float:
        """A uniform number in [0, 1) from ``SEED`` and ``iteration`` only: the same on every
        rank and after a resume."""
        return float(np.random.default_rng([self.cfg.SEED, iteration]).random())

    # ------------------------------------------------------------------ sample grids
    def _display_batches(self):
        """Fixed display images (test transform): 2 x VIS.NUM_IMAGES train images and, when
        there is a test set, as many query images."""
        if self._display is None:
            n = self.cfg.VIS.NUM_IMAGES
            g = torch.Generator().manual_seed(self.cfg.SEED)
            tf = build_transforms(self.cfg, False)
            sources = {"train": self.train_items}
            if self.test_sets:
                first = next(iter(self.test_sets.values()))
                sources["test"] = first["query"].dataset.items
            self._display = {}
            for split, items in sources.items():
                if len(items) < 2 * n:
                    continue
                idx = torch.randperm(len(items), generator=g)[: 2 * n].tolist()
                ds = ImageListDataset([items[i] for i in idx], tf)
                imgs = torch.stack([ds[i]["img"] for i in range(len(ds))])
                self._display[split] = (imgs[:n], imgs[n:])
        return self._display

    def visualize(self, iteration: int) -> None:
        """``OUTPUT_DIR/images/gen_{train,test}_<iter>.jpg`` and TensorBoard: rows x_a,
        reconstruction, cycle, G(s_a, f_b), then the same for x_b. Also the swap grid of the
        x_a images (``images/swap_{split}_<iter>.jpg``, tag ``swap/{split}``; see
        :func:`~dgnet_plugin.methods.dgnet.generation.swap.swap_grid`)."""
        mean, std = self.cfg.INPUT.PIXEL_MEAN, self.cfg.INPUT.PIXEL_STD
        for split, (xa, xb) in self._display_batches().items():
            with self.autocast():
                rows = self.model.sample(xa.to(self.device), xb.to(self.device))
            self.save_samples(f"gen_{split}", rows, iteration, f"samples/{split}")
            path = os.path.join(self.output_dir, "images", f"swap_{split}_{iteration:08d}.jpg")
            with self.autocast():
                swap = save_swap_grid(self.model, xa.to(self.device), path, mean, std)
            if self.writer is not None:
                self.writer.add_image(f"swap/{split}", swap, iteration)

    # ------------------------------------------------------------------ evaluation
    def extra_rows(self) -> dict:
        """The teacher's row (computed once) when a teacher is loaded."""
        if self.teacher is None:
            return {}
        if self._teacher_results is None:
            self._teacher_results = self.evaluate_model(self.teacher)
        return {"teacher (IDE)": self._teacher_results}


class GenerationQuality(HookBase):
    """What the generator's images show, as numbers, on up to ``num_images`` held-out images
    (the first test set's queries; the training images when there is no test set): the
    self-reconstruction SSIM beside a random other image's and a blurred copy's
    (:func:`~.generation.quality.reconstruction_ssim`), and the swap measures
    (:func:`~.generation.quality.swap_measures`). Rank 0, at the end of training and every
    ``period`` iterations (``VIS.QUALITY_PERIOD``; 0 = at the end only). Logged as a table and
    written to ``metrics.json`` as ``generation/<name>`` at that iteration (the SSIM-against-
    iterations curve of a run)."""

    def __init__(self, num_images: int = 128, period: int = 0):
        self.num_images, self.period = num_images, period
        self._x = None

    def _images(self) -> torch.Tensor:
        if self._x is None:
            t = self.trainer
            items = t.train_items
            if t.test_sets:
                items = next(iter(t.test_sets.values()))["query"].dataset.items
            g = torch.Generator().manual_seed(t.cfg.SEED)
            idx = torch.randperm(len(items), generator=g)[: self.num_images].tolist()
            ds = ImageListDataset([items[i] for i in idx], build_transforms(t.cfg, False))
            self._x = torch.stack([ds[i]["img"] for i in range(len(ds))])
        return self._x.to(self.trainer.device)

    def measure(self) -> dict[str, float]:
        t = self.trainer
        x = self._images()
        mean, std = t.cfg.INPUT.PIXEL_MEAN, t.cfg.INPUT.PIXEL_STD
        was_training = t.model.training
        t.model.eval()
        try:
            with t.autocast():
                found = {
                    **reconstruction_ssim(t.model, x, mean, std),
                    **swap_measures(t.model, x, mean, std),
                }
        finally:
            t.model.train(was_training)
        rows = "\n".join(f"  {k:36s} {v:.4f}" for k, v in found.items())
        logger.info(
            "Generated images at iteration %d (%d held-out images):\n%s", t.iter, len(x), rows
        )
        t.metrics.write({"iteration": t.iter, **{f"generation/{k}": v for k, v in found.items()}})
        return found

    def after_step(self) -> None:
        t = self.trainer
        if (
            self.period > 0
            and t.iter % self.period == 0
            and t.iter < t.max_iter
            and comm.is_main_process()
            # a diverged step: the NaN stop reports it, nothing to measure (checked only on a
            # measuring step: each check reads the losses back from the device)
            and all(torch.isfinite(v).all() for v in (t.step_outputs or {}).values())
        ):
            self.measure()

    def after_train(self) -> None:
        if self.trainer.completed and comm.is_main_process():
            self.measure()
