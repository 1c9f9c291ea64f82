"""PTGAN's engines: the person-transfer translator (CycleGAN + the foreground-masked identity
term) and IDE on the transferred source images."""

from __future__ import annotations

from ...data.build import build_train_loader
from ...data.transforms import JointTransform
from ...engine import ENGINE_REGISTRY
from ...losses import masked_identity_loss
from ...offline_augmentation.cyclegan import CycleGANTrainer
from ...offline_augmentation.engine import GeneratedReIDTrainer, target_domain_items
from ...offline_augmentation.masks import MaskedImageDataset, mask_provider_from_cfg


@ENGINE_REGISTRY.register()
class PTGANEngine(GeneratedReIDTrainer):
    """IDE on the source images transferred to the target domain, with the source labels
    (hard cross-entropy; ``GENERATED.ONLY``), evaluated on ``DATASETS.TESTS`` (the target)."""


@ENGINE_REGISTRY.register()
class PTGANTranslatorEngine(CycleGANTrainer):
    """PTGAN's translator (Wei et al. section 4): ``L_PTGAN = L_Style + lambda_1 L_ID``, with
    ``L_Style`` CycleGAN's adversarial + cycle loss and ``L_ID = E||(G(a) - a) * M(a)||_2 +
    E||(F(b) - b) * M(b)||_2`` on the foreground masks ``M`` (:func:`~dgnet_plugin.losses.
    masked_identity_loss`, divided by sqrt(C H W) unless ``PTGAN.ID_NORM`` is ``paper``: the
    raw norm): the person keeps its appearance, the background takes the target's style.
    Domain A = source training images, B = ``DOMAINS.TARGET``; both need masks
    (``MASKS``)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.masks = mask_provider_from_cfg(cfg, self.device)
        if hasattr(self.masks, "prepare"):  # a mask model: segment here, on the run's device
            self.masks.prepare(it[0] for it in self.items_a + self.items_b)

    def domain_items(self):
        return list(self.train_items), target_domain_items(self.cfg)

    def domain_stream(self, items, seed_offset, start):
        ds = MaskedImageDataset(items, JointTransform(self.cfg, True), self.masks,
                                self.cfg.INPUT.FORMAT)  # fmt: skip
        return build_train_loader(self.cfg, items, start, seed_offset, dataset=ds)

    def extra_generator_losses(self, batch_a, batch_b, out):
        p = self.cfg.PTGAN
        loss = masked_identity_loss(out["fake_b"], out["a"], batch_a["mask"])
        loss = loss + masked_identity_loss(out["fake_a"], out["b"], batch_b["mask"])
        if p.ID_NORM == "paper":  # the raw per-image L2 norm of Eq. 4
            loss = loss * out["a"][0].numel() ** 0.5
        return {"masked_id": loss}, {"masked_id": p.ID_WEIGHT}
