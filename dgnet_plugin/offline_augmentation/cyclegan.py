"""The CycleGAN training step (Zhu et al., ICCV 2017, section 3-4), shared by the offline
translation methods (CamStyle, SPGAN, PTGAN): a method subclasses :class:`CycleGANTrainer`,
says which training images form domains A and B (:meth:`~CycleGANTrainer.domain_items`),
adds its own generator terms (:meth:`~CycleGANTrainer.extra_generator_losses`) and registers
the subclass in ``ENGINE_REGISTRY`` under its own name."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from ..config import ConfigError, load_cfg_file
from ..data import build_train_loader
from ..engine.defaults import IterationTrainer, resolve_device
from ..engine.loading import read_state_dict
from ..engine.optim import build_adam, build_linear_decay_scheduler
from ..losses import (
    ImagePool,
    lsgan_dis_loss,
    lsgan_gen_loss,
    vanilla_gan_dis_loss,
    vanilla_gan_gen_loss,
)
from ..modeling import build_model
from ..utils.checkpoint import CheckpointError
from .config import GAN_SOLVER_KEYS

logger = logging.getLogger("dgnet_plugin")

_ADVERSARIAL = {
    "lsgan": (lsgan_gen_loss, lsgan_dis_loss),
    "vanilla": (vanilla_gan_gen_loss, vanilla_gan_dis_loss),
}


def adversarial_losses(mode: str):
    """``(generator loss, discriminator loss)`` of ``LOSS.GAN_MODE`` (lsgan | vanilla)."""
    if mode not in _ADVERSARIAL:
        raise ConfigError(f"LOSS.GAN_MODE '{mode}' is unknown; choose lsgan or vanilla")
    return _ADVERSARIAL[mode]


class CycleGANTrainer(IterationTrainer):
    """One CycleGAN iteration per step, on one batch of each domain (images in ``[-1, 1]``:
    the stage's ``INPUT.PIXEL_MEAN`` / ``STD`` are 0.5, see
    :func:`dgnet_plugin.offline_augmentation.config.gan_stage_config`):

    1. translate: ``fake_b = G(a)``, ``rec_a = F(fake_b)``, ``fake_a = F(b)``, ``rec_b =
       G(fake_a)``;
    2. generators (D frozen): ``L_GAN(G, D_B) + L_GAN(F, D_A)`` (Eq. 1; LSGAN by default,
       section 4) ``+ LOSS.CYCLE * (L_cyc(a) + L_cyc(b))`` (Eq. 2) ``+ LOSS.IDENTITY *
       (||G(b) - b||_1 + ||F(a) - a||_1)`` (section 5.2) + the method's terms;
    3. discriminators: ``(L_D(real) + L_D(fake)) / 2`` for each, the fakes drawn through an
       :class:`~dgnet_plugin.losses.ImagePool` of ``GAN.POOL_SIZE`` (section 4);
    4. the method's own phases (:meth:`~CycleGANTrainer.extra_steps`; SPGAN's SiaNet).

    Adam (``SOLVER.GEN`` / ``SOLVER.DIS``: CycleGAN's 2e-4, betas (0.5, 0.999)), constant then
    linearly decayed to 0 from ``GAN.DECAY_START`` to ``SOLVER.MAX_ITER``. The image pools are
    not checkpointed: a resumed run refills them (50 images: a few iterations).
    """

    #: ``GAN.POOL_RESEED``: the pools draw from a fresh ``RandomState(0)`` every iteration
    pool_reseed = False

    REQUIRES = ("gen", "dis")
    AMP_PHASES = ("gen", "dis")
    SOLVER_KEYS = GAN_SOLVER_KEYS

    def __init__(self, cfg):
        super().__init__(cfg)
        self.gan_gen_loss, self.gan_dis_loss = adversarial_losses(cfg.LOSS.GAN_MODE)
        g = torch.Generator().manual_seed(cfg.SEED)
        self.pool_a, self.pool_b = ImagePool(cfg.GAN.POOL_SIZE, g), ImagePool(cfg.GAN.POOL_SIZE, g)
        self.pool_reseed = bool(cfg.GAN.get("POOL_RESEED", False))
        self.items_a, self.items_b = self.domain_items()
        for label, items in (("A", self.items_a), ("B", self.items_b)):
            if len(items) < cfg.SOLVER.IMS_PER_BATCH:
                raise ConfigError(
                    f"domain {label} of {type(self).__name__} has {len(items)} training images, "
                    f"fewer than GAN.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH}"
                )
        logger.info("CycleGAN domains: A %d images, B %d images", len(self.items_a),
                    len(self.items_b))  # fmt: skip

    def build_optimizers(self, cfg) -> dict:
        """``gen`` (both generators) and ``dis`` (both discriminators): Adam, constant then
        linearly decayed from ``GAN.DECAY_START``."""
        m, out = self.model, {}
        for name, nets in (("gen", m.generators()), ("dis", m.discriminators())):
            solver = cfg.SOLVER.GEN if name == "gen" else cfg.SOLVER.DIS
            opt = build_adam(nets, solver, self.device)
            sched = build_linear_decay_scheduler(opt, cfg.GAN.DECAY_START, cfg.SOLVER.MAX_ITER)
            out[name] = (opt, sched)
        return out

    def build_train_loader(self, start: int):
        """``(batch_a, batch_b)`` pairs: one stream per domain (:meth:`domain_stream`)."""
        return zip(
            self.domain_stream(self.items_a, 101, start),
            self.domain_stream(self.items_b, 202, start),
            strict=False,
        )

    # ------------------------------------------------------------------ for methods
    def domain_items(self) -> tuple[list, list]:
        """The training items ``(path, pid, camid, dsetid)`` of domain A and of domain B."""
        raise NotImplementedError

    def domain_stream(self, items: list, seed_offset: int, start: int):
        """Infinite iterator of batches of ``items`` (at least ``img``); override to add
        fields (PTGAN's masks)."""
        return build_train_loader(self.cfg, items, start=start, seed_offset=seed_offset)

    def extra_generator_losses(self, batch_a, batch_b, out: dict) -> tuple[dict, dict]:
        """The method's own generator terms, unweighted, and their weights ``(terms,
        weights)``, from the batches and ``out`` (``a``, ``b``, ``fake_a``, ``fake_b``,
        ``rec_a``, ``rec_b``); they join the generators' phase."""
        return {}, {}

    def frozen_in_generator_step(self) -> list:
        """Modules whose parameters take no gradient in the generators' step (the
        discriminators; a method adds its own, e.g. SPGAN's SiaNet)."""
        return [self.model.discriminators()]

    def extra_steps(self, batch_a, batch_b, out: dict) -> dict[str, torch.Tensor]:
        """The method's own update phases, run after the discriminators' step on the same
        batches and the generators' pre-update outputs ``out``; returns detached values to
        log (SPGAN: SiaNet's step)."""
        return {}

    # ------------------------------------------------------------------ the step
    def translate(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        m = self.model
        fake_b, fake_a = m.gen_ab(a), m.gen_ba(b)
        return {
            "a": a,
            "b": b,
            "fake_b": fake_b,
            "fake_a": fake_a,
            "rec_a": m.gen_ba(fake_b),
            "rec_b": m.gen_ab(fake_a),
        }

    def train_step(self, batches, iteration: int) -> dict[str, torch.Tensor]:
        cfg, m = self.cfg, self.model
        batch_a, batch_b = batches
        a, b = batch_a["img"], batch_b["img"]
        # generators, with the discriminators (and the method's other networks) frozen
        frozen = self.frozen_in_generator_step()
        for net in frozen:
            net.requires_grad_(False)
        with self.autocast():
            out = self.translate(a, b)
            terms = m.generator_losses(out, self.gan_gen_loss, cfg.LOSS.IDENTITY > 0)
            extra, extra_weights = self.extra_generator_losses(batch_a, batch_b, out)
            terms.update(extra)
        weights = {"cycle": cfg.LOSS.CYCLE, "identity": cfg.LOSS.IDENTITY, **extra_weights}
        logged = self.step_phase("gen", terms, weights)
        for net in frozen:
            net.requires_grad_(True)
        # discriminators, on pooled fakes
        fake_a, fake_b = self.pooled_fakes(out["fake_a"].detach(), out["fake_b"].detach())
        with self.autocast():
            d_terms = m.discriminator_losses(fake_a, fake_b, a, b, self.gan_dis_loss)
        logged.update(self.step_phase("dis", d_terms))
        return {**logged, **self.extra_steps(batch_a, batch_b, out)}

    def pooled_fakes(self, fake_a: torch.Tensor, fake_b: torch.Tensor):
        """The fakes the discriminators see: through the two image pools, or with
        ``GAN.POOL_RESEED`` through SPGAN's re-seeded pools (a fresh ``RandomState(0)`` per
        iteration, the a2b pool, i.e. ``fake_b``'s, drawn first)."""
        if self.pool_reseed:
            rng = np.random.RandomState(0)
            fake_b = self.pool_b.query(fake_b, rng)
            return self.pool_a.query(fake_a, rng), fake_b
        return self.pool_a.query(fake_a), self.pool_b.query(fake_b)

    # ------------------------------------------------------------------ grids
    def display_images(self, items: list, n: int) -> torch.Tensor:
        from ..data.datasets import read_image
        from ..data.transforms import build_transforms

        tf = build_transforms(self.cfg, False)
        step = max(len(items) // n, 1)
        imgs = [
            tf(read_image(items[i][0], self.cfg.INPUT.FORMAT)) for i in range(0, len(items), step)
        ]
        return torch.stack(imgs[:n]).to(self.device)

    def visualize(self, iteration: int) -> None:
        """``images/translation_<iter>.jpg``: rows a, G(a), F(G(a)), b, F(b), G(F(b)) for
        ``VIS.NUM_IMAGES`` fixed images of each domain (spread over the training list)."""
        n = min(self.cfg.VIS.NUM_IMAGES, len(self.items_a), len(self.items_b))
        a, b = self.display_images(self.items_a, n), self.display_images(self.items_b, n)
        out = self.translate(a, b)
        rows = [out[k] for k in ("a", "fake_b", "rec_a", "b", "fake_a", "rec_b")]
        self.save_samples("translation", rows, iteration)


def load_translator(run_dir: str, device="cpu"):
    """The trained CycleGAN-style model of a translator stage's ``run_dir`` (its
    ``config.yaml`` and ``model_final.pth``), in eval mode on ``device``; returns ``(model,
    cfg, weights path)``.

    Raises:
        CheckpointError: the run has no ``model_final.pth`` (the stage did not finish) or the
            weights do not fit its config.

    The generators' dropout stays active when the run's ``GAN.DROPOUT_AT_GENERATION`` is
    True (CamStyle: ``CycleGAN-for-CamStyle/test.py`` never calls ``model.eval()``; its
    instance norms have no running statistics, so only dropout differs between the modes).
    """
    weights = os.path.join(run_dir, "model_final.pth")
    config = os.path.join(run_dir, "config.yaml")
    if not (os.path.isfile(weights) and os.path.isfile(config)):
        raise CheckpointError(
            f"no finished translator in '{run_dir}' (model_final.pth and config.yaml); run its "
            "stage first (tools/train_net.py --stage ...)"
        )
    cfg = load_cfg_file(config, freeze=True)
    model = build_model(cfg, 0)
    try:
        model.load_state_dict(read_state_dict(weights))
    except RuntimeError as e:
        raise CheckpointError(f"'{weights}' does not fit '{config}': {str(e)[:300]}") from None
    model = model.to(resolve_device(device)).eval()
    if cfg.GAN.get("DROPOUT_AT_GENERATION", False):
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.train()
    return model, cfg, weights


class Translators:
    """The ``translate`` callable of :func:`dgnet_plugin.data.generated.write_generated_set`
    for CycleGAN-style stages: each entry names its translator stage's run folder
    (``translator``) and direction (``direction``: ``"ab"`` = ``gen_ab``, ``"ba"`` =
    ``gen_ba``); sources are read with that stage's test transform (``GAN.SIZE``, ``[-1,
    1]``), translated in groups of one model and direction, and returned in ``[0, 1]`` in the
    entries' order. Models are loaded once (:func:`load_translator`)."""

    def __init__(self, device="cpu"):
        self.device = device
        self._models: dict[str, tuple] = {}

    def model(self, run_dir: str):
        if run_dir not in self._models:
            self._models[run_dir] = load_translator(run_dir, self.device)
        return self._models[run_dir]

    @torch.no_grad()
    def __call__(self, entries: list[dict]) -> torch.Tensor:
        from ..data.datasets import read_image
        from ..data.transforms import build_transforms

        out: list[torch.Tensor | None] = [None] * len(entries)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, e in enumerate(entries):
            if e["direction"] not in ("ab", "ba"):
                raise ValueError(f"translator direction '{e['direction']}' must be 'ab' or 'ba'")
            groups.setdefault((e["translator"], e["direction"]), []).append(i)
        for (run_dir, direction), idx in groups.items():
            model, cfg, _ = self.model(run_dir)
            tf = build_transforms(cfg, False)
            x = torch.stack([tf(read_image(entries[i]["source"], cfg.INPUT.FORMAT)) for i in idx])
            gen = model.gen_ab if direction == "ab" else model.gen_ba
            # on the device: the writer moves the whole batch to the host once
            y = ((gen(x.to(next(model.parameters()).device)) + 1) / 2).clamp(0, 1)
            for i, img in zip(idx, y):
                out[i] = img
        return torch.stack(out)
