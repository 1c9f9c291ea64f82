"""SPGAN's engines: the translator (CycleGAN + identity mapping + contrastive, SiaNet with its
own optimiser) and IDE on the translated source images."""

from __future__ import annotations

from ...engine import ENGINE_REGISTRY
from ...engine.optim import build_adam
from ...offline_augmentation.cyclegan import CycleGANTrainer
from ...offline_augmentation.engine import GeneratedReIDTrainer, target_domain_items
from .losses import spgan_metric_loss


@ENGINE_REGISTRY.register()
class SPGANEngine(GeneratedReIDTrainer):
    """IDE on the source images translated to the target style, with the source labels (hard
    cross-entropy; ``GENERATED.ONLY``), evaluated on ``DATASETS.TESTS`` (the target)."""


@ENGINE_REGISTRY.register()
class SPGANTranslatorEngine(CycleGANTrainer):
    """SPGAN's translator (``SPGAN/train_spgan_demo.py``): domain A = the source training
    images (``DATASETS.NAMES``), B = the target's (``DOMAINS.TARGET``, labels unused).

    One iteration, in the released order: (1) the generators' step on CycleGAN's loss
    (LSGAN, ``LOSS.CYCLE`` 10, ``LOSS.IDENTITY`` 5) plus ``SPGAN.CONTRASTIVE`` (2) x
    ``m_loss`` (:func:`~.losses.spgan_metric_loss`, ``SPGAN.NEGATIVES``, margin
    ``SPGAN.MARGIN``), SiaNet frozen; (2) the discriminators' step; (3) SiaNet's step on the
    unweighted ``m_loss`` of the same real images and the generators' pre-update
    translations (detached), with its own Adam (``SPGAN.SIAMESE_LR`` 2e-4, betas
    ``SPGAN.SIAMESE_BETAS`` (0.5, 0.999), constant: ``metric_train_op``)."""

    REQUIRES = ("gen", "dis")
    AMP_PHASES = ("gen", "dis", "metric")

    def build_optimizers(self, cfg) -> dict:
        """The translators' two phases, then ``metric``: SiaNet's own constant Adam."""
        s = cfg.SPGAN
        solver = type(cfg.SOLVER.GEN)(
            {"LR": s.SIAMESE_LR, "BETAS": s.SIAMESE_BETAS, "WEIGHT_DECAY": 0.0}
        )
        metric = build_adam(self.model.siamese, solver, self.device)
        return {**super().build_optimizers(cfg), "metric": (metric, None)}

    def domain_items(self):
        return list(self.train_items), target_domain_items(self.cfg)

    def frozen_in_generator_step(self) -> list:
        return [*super().frozen_in_generator_step(), self.model.siamese]

    def metric_loss(self, out: dict):
        s, sia = self.cfg.SPGAN, self.model.siamese
        e = {k: sia(out[k]) for k in ("a", "fake_b", "b", "fake_a")}
        return spgan_metric_loss(e["a"], e["fake_b"], e["b"], e["fake_a"], s.MARGIN, s.NEGATIVES)

    def extra_generator_losses(self, batch_a, batch_b, out):
        return {"contrastive": self.metric_loss(out)}, {"contrastive": self.cfg.SPGAN.CONTRASTIVE}

    def extra_steps(self, batch_a, batch_b, out):
        fakes = {k: out[k].detach() for k in ("a", "b", "fake_a", "fake_b")}
        with self.autocast():
            terms = {"metric": self.metric_loss(fakes)}
        return self.step_phase("metric", terms)
