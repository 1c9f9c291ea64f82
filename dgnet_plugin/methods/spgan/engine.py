"""SPGAN's engines: the translator (CycleGAN + identity mapping + contrastive) and IDE on the
translated source images."""

from __future__ import annotations

from ...engine import ENGINE_REGISTRY
from ...engine.cyclegan import CycleGANTrainer
from ...engine.offline import GeneratedReIDTrainer, target_domain_items
from .losses import spgan_contrastive_loss


@ENGINE_REGISTRY.register()
class SPGANEngine(GeneratedReIDTrainer):
    """IDE on the source images translated to the target style, with the source labels (hard
    cross-entropy; ``GENERATED.ONLY``), evaluated on ``DATASETS.TESTS`` (the target)."""


@ENGINE_REGISTRY.register()
class SPGANTranslatorEngine(CycleGANTrainer):
    """SPGAN's translator: domain A = the source training images (``DATASETS.NAMES``), B =
    the target's (``DOMAINS.TARGET``, labels unused). The generator loss is CycleGAN's
    (LSGAN, ``LOSS.CYCLE`` 10, ``LOSS.IDENTITY`` 5) plus ``SPGAN.CONTRASTIVE`` x the
    contrastive term of :func:`~.losses.spgan_contrastive_loss` (margin ``SPGAN.MARGIN``);
    SiaNet is trained with the generators by the same term."""

    REQUIRES = ("gen", "dis")

    def domain_items(self):
        return list(self.train_items), target_domain_items(self.cfg)

    def extra_generator_losses(self, batch_a, batch_b, out):
        s = self.cfg.SPGAN
        sia = self.model.siamese
        e = {k: sia(out[k]) for k in ("a", "fake_b", "b", "fake_a")}
        loss = spgan_contrastive_loss(e["a"], e["fake_b"], e["b"], e["fake_a"], s.MARGIN)
        return {"contrastive": s.CONTRASTIVE * loss}
