"""The offline generate-then-train pipeline's generic parts (CamStyle, SPGAN, PTGAN, LSRO,
PN-GAN): stage factories for :mod:`.stages` and the re-ID trainer on real + generated images.

A method's pipeline is typically ``[translator stage(s), generation stage, baseline stage]``
then its main engine (a :class:`GeneratedReIDTrainer` subclass): every stage's output lives
under the main ``OUTPUT_DIR`` (``gan*/``, ``generated/``, ``baseline/``), and the final table
shows the method's re-ID model beside the real-only baseline trained with the same recipe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch

from ..data import load_train_set
from ..data.build import open_dataset, parse_dataset_entry
from ..data.datasets import parse_market_name
from ..data.generated import (
    generated_file_name,
    is_complete,
    read_generated_set,
    write_generated_set,
)
from ..engine.defaults import IterationTrainer
from ..engine.loading import load_model
from ..engine.optim import build_iter_scheduler, build_reid_optimizer
from ..engine.stages import Stage, StageContext, derive_config
from ..utils import comm
from ..utils.events import read_json_lines
from .config import GAN_STAGE_IGNORES, gan_stage_config
from .cyclegan import Translators
from .data import label_generated
from .label_assignment import label_assignment_loss
from .subsets import subset_done, write_identity_subset

logger = logging.getLogger("dgnet_plugin")

BASELINE_SUBDIR = "baseline"

#: what a generation stage does not read: the re-ID recipe (the translators it uses are
#: earlier stages, whose change reruns it anyway)
GENERATION_IGNORES = (
    "SOLVER",
    "DATALOADER",
    "MODEL.HEADS",
    "MODEL.BACKBONE",
    "MODEL.WEIGHTS",
    "LOSS.LABEL",
    "GENERATED.ENABLED",
    "GENERATED.PER_BATCH",
)


def generated_root(cfg) -> str:
    """``GENERATED.ROOT``, or ``OUTPUT_DIR/generated`` when it is empty."""
    return cfg.GENERATED.ROOT or os.path.join(cfg.OUTPUT_DIR, "generated")


def run_finished(run_dir: str) -> bool:
    """Whether the training run of ``run_dir`` finished (``model_final.pth``)."""
    return os.path.isfile(os.path.join(run_dir, "model_final.pth"))


def training_stage(
    name: str,
    description: str,
    run_dir: Callable,
    merges: Callable[[object], dict],
    ignore: tuple[str, ...] = (),
) -> Stage:
    """A stage that trains a derived config in a run of its own (:func:`~.run.run_training`):
    the main config with ``OUTPUT_DIR = run_dir(cfg)`` and ``merges(cfg)`` (e.g.
    :func:`dgnet_plugin.offline_augmentation.config.gan_stage_config` plus the translator's
    ``ENGINE.NAME``), always resuming (an interrupted stage continues from its newest
    checkpoint), without the pipeline. The stage is done when that run wrote
    ``model_final.pth``; ``ignore``: keys of the derived config it does not read."""
    from ..engine.run import run_training

    def config(cfg):
        return derive_config(cfg, {"OUTPUT_DIR": run_dir(cfg), **merges(cfg)})

    def run(ctx: StageContext) -> None:
        run_training(config(ctx.cfg), resume=True)

    def done(ctx: StageContext) -> bool:
        return run_finished(run_dir(ctx.cfg))

    return Stage(
        name,
        run,
        done,
        description,
        every_process=True,
        config=config,
        ignore=ignore,
        outputs=lambda cfg: [run_dir(cfg)],
    )


def baseline_stage() -> Stage:
    """The real-only baseline: the main engine with ``GENERATED.ENABLED False`` (same
    recipe, same seed) in ``OUTPUT_DIR/baseline``; :class:`GeneratedReIDTrainer` adds its row
    to the final table."""
    return training_stage(
        BASELINE_SUBDIR,
        "re-ID baseline on the real images only (same recipe)",
        lambda cfg: os.path.join(cfg.OUTPUT_DIR, BASELINE_SUBDIR),
        lambda cfg: {"GENERATED.ENABLED": False},
    )


def generation_stage(run: Callable[[StageContext], None], description: str) -> Stage:
    """The stage ``generate``: ``run(ctx)`` writes the generated set at
    :func:`generated_root` (with :func:`dgnet_plugin.data.generated.write_generated_set`,
    which resumes and writes ``COMPLETE.json`` at the end); done when it is complete."""
    return Stage(
        "generate",
        run,
        lambda ctx: is_complete(generated_root(ctx.cfg)),
        description,
        outputs=lambda cfg: [generated_root(cfg)],
        ignore=GENERATION_IGNORES,
    )


def domain_split_stage() -> Stage:
    """The stage ``domains``: when ``DOMAINS.SPLIT.ROOT`` is set, cut the source and target
    domains out of that Market-layout folder by identity range
    (:func:`~dgnet_plugin.data.subsets.write_identity_subset`) into ``SOURCE_DIR`` and
    ``TARGET_DIR`` (which the config's ``DATASETS`` / ``DOMAINS.TARGET`` entries name)."""

    def run(ctx: StageContext) -> None:
        s = ctx.cfg.DOMAINS.SPLIT
        for out, train, test in (
            (s.SOURCE_DIR, s.SOURCE_TRAIN_PIDS, s.SOURCE_TEST_PIDS),
            (s.TARGET_DIR, s.TARGET_TRAIN_PIDS, s.TARGET_TEST_PIDS),
        ):
            counts = write_identity_subset(s.ROOT, out, train, test)
            logger.info("Domain %s (pids %s train, %s test): %s", out, train, test, counts)

    def done(ctx: StageContext) -> bool:
        s = ctx.cfg.DOMAINS.SPLIT
        return subset_done(s.SOURCE_DIR) and subset_done(s.TARGET_DIR)

    return Stage(
        "domains",
        run,
        done,
        "source and target domains cut out by identity range",
        outputs=lambda cfg: [cfg.DOMAINS.SPLIT.SOURCE_DIR, cfg.DOMAINS.SPLIT.TARGET_DIR],
        keys=("DOMAINS.SPLIT",),
    )


def target_domain_items(cfg) -> list:
    """The training items ``(path, pid, camid, dsetid)`` of ``DOMAINS.TARGET`` (their labels
    are not used).

    Raises:
        ConfigError: ``DOMAINS.TARGET`` is empty.
    """
    from ..config import ConfigError

    if not cfg.DOMAINS.TARGET:
        raise ConfigError("DOMAINS.TARGET is empty: name the target domain's dataset(s)")
    items = []
    for entry in cfg.DOMAINS.TARGET:
        items += list(open_dataset(*parse_dataset_entry(entry, cfg.DATASETS.ROOT)).train)
    return items


def domain_sizes(cfg) -> tuple[int, int]:
    """Training-image counts of the source (``DATASETS.NAMES``) and the target
    (``DOMAINS.TARGET``) domain, read only when ``GAN.EPOCHS`` sets the translator's length
    (else ``(0, 0)``: the counts are not used)."""
    if cfg.GAN.get("EPOCHS", 0) <= 0:
        return (0, 0)
    items, _ = load_train_set(cfg)
    return len(items), len(target_domain_items(cfg))


def translator_dir(cfg) -> str:
    return os.path.join(cfg.OUTPUT_DIR, cfg.GAN.OUTPUT_SUBDIR)


def source_to_target_plan(cfg, generator: str) -> list[dict]:
    """Every source training image (``DATASETS.NAMES``) through ``gen_ab``, written as
    ``{pid}_c{cam}s0_{serial}_s2t.jpg`` with its pid and camera (``serial``: its index in the
    training list)."""
    items, _ = load_train_set(cfg)
    run = translator_dir(cfg)
    out = []
    for serial, (path, *_) in enumerate(items):
        pid, cam = parse_market_name(path)
        out.append(
            {
                "file": generated_file_name(pid, cam, serial, "s2t"),
                "source": path,
                "source_pid": pid,
                "source_camid": cam,
                "target": "target",
                "translator": run,
                "direction": "ab",
                "generator": generator,
                "checkpoint": os.path.join(run, "model_final.pth"),
            }
        )
    return out


def cross_domain_stages(cfg, engine: str, meta_arch: str, generator: str) -> list:
    """The cross-domain pipeline before the re-ID run (SPGAN, PTGAN): ``domains`` (when
    ``DOMAINS.SPLIT.ROOT`` is set), the translator ``gan`` (``engine`` / ``meta_arch``),
    ``generate`` (source -> target), ``baseline`` (direct transfer: the source images)."""

    def generate(ctx: StageContext) -> None:
        c = ctx.cfg
        write_generated_set(
            generated_root(c),
            source_to_target_plan(c, generator),
            Translators(ctx.device),
            generator=generator,
            batch_size=c.GENERATED.BATCH_SIZE,
        )

    stages = [domain_split_stage()] if cfg.DOMAINS.SPLIT.ROOT else []
    stages += [
        training_stage(
            cfg.GAN.OUTPUT_SUBDIR,
            f"{generator}: source <-> target translator",
            translator_dir,
            lambda c: {
                **gan_stage_config(c, domain_sizes(c)),
                "ENGINE.NAME": engine,
                "MODEL.META_ARCHITECTURE": meta_arch,
            },
            GAN_STAGE_IGNORES,
        ),
        generation_stage(generate, "every source training image to the target style"),
        baseline_stage(),
    ]
    return stages


def freeze_reid_parameters(cfg, model: torch.nn.Module) -> list[str]:
    """Turn off the gradient of the parameters named by ``SOLVER.REID.FROZEN`` (name
    prefixes) and, with ``SOLVER.REID.FREEZE_BN_AFFINE``, of every batch norm's scale and
    shift (SPGAN's Caffe IDE: conv1 and res2 at ``lr_mult 0``, every ``Scale`` layer at
    ``lr_mult 0``: ``models/*/ResNet_50_domain/ResNet_50_train.prototxt``). Returns the
    frozen names. Raises ``ConfigError`` when a prefix matches no parameter."""
    from ..config import ConfigError

    s = cfg.SOLVER.REID
    prefixes = tuple(s.get("FROZEN", ()) or ())
    bn_names = set()
    if s.get("FREEZE_BN_AFFINE", False):
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                bn_names.update(f"{name}.{p}" for p, _ in mod.named_parameters(recurse=False))
    frozen = []
    for name, p in model.named_parameters():
        if name.startswith(prefixes) or name in bn_names:
            p.requires_grad_(False)
            frozen.append(name)
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in frozen):
            raise ConfigError(
                f"SOLVER.REID.FROZEN: no parameter of the model starts with {prefix!r}"
            )
    return frozen


def build_caffe_style_optimizer(cfg, model, head_names, device=None):
    """SGD (``SOLVER.REID.MOMENTUM`` / ``NESTEROV``) with Caffe's per-layer multipliers: every
    trainable parameter outside the heads at ``BASE_LR`` / ``WEIGHT_DECAY``; the weights of
    the modules named ``head_names`` at ``HEAD_MULTS[0]`` x lr and ``HEAD_MULTS[1]`` x decay,
    their biases at ``HEAD_MULTS[2]`` / ``HEAD_MULTS[3]`` (SPGAN's fc8: ``lr_mult 2,
    decay_mult 2`` / ``lr_mult 4, decay_mult 0``). Frozen parameters are left out.

    Raises:
        ConfigError: ``HEAD_MULTS`` without 4 values, or ``SOLVER.REID.OPTIM`` not sgd.
    """
    from ..config import ConfigError
    from ..engine.optim import with_fast_impl

    s = cfg.SOLVER.REID
    mults = tuple(float(v) for v in s.HEAD_MULTS)
    if len(mults) != 4 or s.OPTIM != "sgd":
        raise ConfigError(
            f"SOLVER.REID.HEAD_MULTS {s.HEAD_MULTS} needs 4 values (weight lr, weight decay, bias "
            f"lr, bias decay) and SOLVER.REID.OPTIM sgd, got OPTIM {s.OPTIM}"
        )
    heads = tuple(f"{h}." for h in head_names)
    groups = {"base": [], "head_w": [], "head_b": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (
            "base"
            if not name.startswith(heads)
            else ("head_b" if name.endswith("bias") else "head_w")
        )
        groups[key].append(p)
    lr, wd = s.BASE_LR, s.WEIGHT_DECAY
    settings = {
        "base": (lr, wd),
        "head_w": (lr * mults[0], wd * mults[1]),
        "head_b": (lr * mults[2], wd * mults[3]),
    }
    param_groups = [
        {"params": ps, "lr": settings[k][0], "weight_decay": settings[k][1]}
        for k, ps in groups.items()
        if ps
    ]
    opt = torch.optim.SGD(param_groups, lr=lr, momentum=s.MOMENTUM, nesterov=s.NESTEROV)
    return with_fast_impl(opt, device)


def split_batch(batch: dict, mask: torch.Tensor) -> dict:
    """The samples of ``batch`` where the ``(N,)`` bool ``mask`` is True: every tensor field
    whose first dimension is ``N`` is indexed, other fields pass through."""
    n = mask.shape[0]
    return {
        k: v[mask] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == n else v
        for k, v in batch.items()
    }


class GeneratedReIDTrainer(IterationTrainer):
    """Re-ID training on real + generated images with one label-assignment loss.

    Each step draws ``SOLVER.IMS_PER_BATCH`` real and ``GENERATED.PER_BATCH`` generated
    images (:class:`~dgnet_plugin.data.samplers.RatioBatchSampler`) from the training set and
    the generated set at :func:`generated_root`; the loss is
    :func:`~dgnet_plugin.losses.label_assignment_loss` with ``LOSS.LABEL.REAL`` for the real
    images and ``LOSS.LABEL.GENERATED`` for the generated ones (hard, LSR with
    ``LOSS.LABEL.EPSILON``, LSRO's uniform label, argmax pseudo-labels). A generated image's
    label is its source's identity (``lsro`` / ``argmax``: no label is read).
    ``GENERATED.ENABLED False`` (or ``PER_BATCH 0``): the real-only baseline;
    ``GENERATED.ONLY``: ``SOLVER.IMS_PER_BATCH`` generated images per step, no real one
    (SPGAN / PTGAN train on the translated source).

    ``GENERATED.MIXING``: ``fixed`` (above; CamStyle's 128 real + 46 camera-style images)
    | ``pool`` (LSRO's released ``examples/cnn_train_dag.m``: each step
    ``SOLVER.IMS_PER_BATCH`` images from one shuffled pool of every real and generated
    image, an epoch being the pool, :class:`~dgnet_plugin.data.samplers.PooledBatchSampler`;
    ``GENERATED.PER_BATCH`` is not read). Either way each sample keeps its own label rule.

    ``GENERATED.SEPARATE_FORWARD`` True (CamStyle's released ``CamStyleTrainer._forward``,
    ``reid/trainers.py``): the real and the generated images of a step go through two
    forward passes (batch-norm statistics per stream, running statistics updated twice) and
    the loss is ``mean_real(loss) + mean_generated(loss)``, each averaged over its own
    samples. False (LSRO's released code, one pool of real and generated images): one
    forward over the mixed batch and one mean over all its samples.

    The model is a meta-architecture with a re-ID network whose training forward returns
    ``(N, K)`` logits (e.g. ``IDEBaseline``, ``MODEL.META_ARCHITECTURE``), its classifier
    named in :attr:`HEAD_NAMES` (trained at ``SOLVER.REID.HEADS_LR_FACTOR`` x). The final
    table adds the baseline of ``OUTPUT_DIR/baseline`` when that run finished.
    """

    REQUIRES = ("reid",)
    HEAD_NAMES: tuple[str, ...] = ("classifier",)

    def __init__(self, cfg):
        super().__init__(cfg)
        g, batch = cfg.GENERATED, cfg.SOLVER.IMS_PER_BATCH
        self.real_per_batch = 0 if g.ENABLED and g.ONLY else batch
        self.generated_per_batch = (batch if g.ONLY else g.PER_BATCH) if g.ENABLED else 0
        # one shuffled pool of real and generated images (GENERATED.MIXING pool)
        self.pooled = bool(g.ENABLED and not g.ONLY and g.get("MIXING", "fixed") == "pool")
        #: whether generated images are trained on (False: the real-only baseline)
        self.with_generated = bool(self.generated_per_batch or self.pooled)
        self.generated_items: list = []
        if self.with_generated:
            samples = read_generated_set(generated_root(cfg))
            labelled = cfg.LOSS.LABEL.GENERATED not in ("lsro", "argmax")
            self.generated_items = label_generated(samples, self.train_items, labelled)
            per_step = (
                f"{batch} per step from one shuffled pool"
                if self.pooled
                else f"{self.real_per_batch} + {self.generated_per_batch} per step"
            )
            logger.info(
                "Training on %d real + %d generated images (%s; generated labels: %s)",
                len(self.train_items) if self.real_per_batch else 0,
                len(self.generated_items),
                per_step,
                cfg.LOSS.LABEL.GENERATED,
            )
        self.separate_forward = bool(g.SEPARATE_FORWARD)
        self._baseline_results = None

    def build_optimizers(self, cfg) -> dict:
        """``model``: the re-ID network's optimiser (:meth:`build_optimizer`, after
        ``SOLVER.REID.FROZEN`` turned off the frozen parameters' gradients)."""
        freeze_reid_parameters(cfg, self.model)
        opt = self.build_optimizer()
        return {"model": (opt, build_iter_scheduler(opt, cfg.SOLVER.STEPS, cfg.SOLVER.REID_GAMMA))}

    def build_train_loader(self, start: int):
        """Real + generated batches (:func:`~.data.build_mixed_train_loader`): a fixed share
        per batch, or one shuffled pool (``GENERATED.MIXING``)."""
        from .data import build_mixed_train_loader

        return build_mixed_train_loader(
            self.cfg, self.train_items, self.generated_items, self.generated_per_batch,
            start=start, real_per_batch=self.real_per_batch, pooled=self.pooled,
        )  # fmt: skip

    def train_step(self, batch: dict, iteration: int) -> dict[str, torch.Tensor]:
        """One re-ID update on the device ``batch`` of real and generated images (``img``,
        ``pid``, ``generated`` and the label-assignment fields); returns ``{"id": loss}``.
        The seam a torchreid engine calls."""
        gen = batch["generated"].bool()
        if self.separate_forward and bool(gen.any()) and not bool(gen.all()):
            # CamStyle (reid/trainers.py, CamStyleTrainer._forward): the real batch, then the
            # transferred one, each through its own forward (batch-norm statistics per
            # stream) and each loss averaged over its own samples
            loss = sum(self._stream_loss(split_batch(batch, mask)) for mask in (~gen, gen))
        else:
            loss = self._stream_loss(batch)
        # the family's term: the per-sample label rule of .label_assignment, unweighted
        return self.step_phase("model", {"id": loss})

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The re-ID optimiser (a method overrides this seam): Caffe's per-layer multipliers
        with ``SOLVER.REID.HEAD_MULTS`` (:func:`build_caffe_style_optimizer`), else the
        backbone at ``BASE_LR`` and :attr:`HEAD_NAMES` at ``HEADS_LR_FACTOR`` x."""
        cfg = self.cfg
        if cfg.SOLVER.REID.get("HEAD_MULTS"):
            return build_caffe_style_optimizer(cfg, self.model, self.HEAD_NAMES, self.device)
        return build_reid_optimizer(cfg, self.model, list(self.HEAD_NAMES), self.device)

    def _stream_loss(self, batch: dict) -> torch.Tensor:
        with self.autocast():
            logits = self.model(batch["img"])
        return self.label_loss(logits, batch)

    def label_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The step's loss: :func:`~dgnet_plugin.losses.label_assignment_loss` of the batch
        with ``LOSS.LABEL`` (a method overrides it to change the labels, e.g. LSRO's
        pseudo-labels)."""
        lab = self.cfg.LOSS.LABEL
        return label_assignment_loss(
            logits, batch["pid"], batch["generated"], lab.REAL, lab.GENERATED, lab.EPSILON
        )

    def row_name(self) -> str:
        """``<engine> (<re-ID network>, real + generated)``, or ``..., real only`` without
        generated images."""
        kind = "real + generated" if self.with_generated else "real only"
        kind = "generated only" if not self.real_per_batch else kind
        name = type(self).__name__.removesuffix("Engine")
        return f"{name} ({type(self.model.reid).__name__}, {kind})"

    def extra_rows(self) -> dict:
        """The real-only baseline's row (``OUTPUT_DIR/baseline``), when it finished and this
        run is not the baseline itself: its final evaluation from its ``metrics.json`` (the
        same test sets), else evaluated here from its ``model_final.pth``."""
        run_dir = os.path.join(self.cfg.OUTPUT_DIR, BASELINE_SUBDIR)
        if not self.with_generated or not run_finished(run_dir):
            return {}
        if self._baseline_results is None:
            self._baseline_results = self._recorded_results(run_dir)
        if self._baseline_results is None:
            model, _ = load_model(
                os.path.join(run_dir, "config.yaml"),
                os.path.join(run_dir, "model_final.pth"),
                self.device,
            )
            self._baseline_results = self.evaluate_model(model.reid)
            comm.synchronize()
        return {"baseline (real images only)": self._baseline_results}

    def _recorded_results(self, run_dir: str) -> dict | None:
        """The last evaluation record of ``run_dir/metrics.json`` as ``{dataset: {metric:
        value}}`` when it covers every test set of this run, else ``None``."""
        path = os.path.join(run_dir, "metrics.json")
        if not os.path.isfile(path):
            return None
        for record in reversed(read_json_lines(path)):
            out: dict = {}
            for key, value in record.items():
                ds, sep, metric = key.rpartition("/")
                if sep and ds in self.test_sets:
                    out.setdefault(ds, {})[metric] = value
            if out and set(out) == set(self.test_sets):
                return out
        return None
