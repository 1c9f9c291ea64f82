"""CycleGAN (Zhu et al., ICCV 2017) as a meta-architecture: two translators and two
discriminators. The networks of CamStyle, SPGAN and PTGAN's translation stage."""

from __future__ import annotations

import torch
from torch import nn

from ..losses import cycle_consistency_loss, identity_mapping_loss
from ..modeling.discriminators import build_discriminator
from ..modeling.generators import build_generator
from ..modeling.meta_arch import META_ARCH_REGISTRY


@META_ARCH_REGISTRY.register()
class CycleGAN(nn.Module):
    """``gen_ab``: domain A -> B, ``gen_ba``: B -> A (``MODEL.GEN.NAME``, e.g.
    ``ResnetGenerator``); ``dis_a`` / ``dis_b`` judge images of A / B (``MODEL.DIS.NAME``,
    e.g. ``PatchGANDiscriminator``). Images ``(N, C, H, W)`` in ``[-1, 1]``; channel counts
    ``MODEL.GEN.IN_CHANNELS`` (domain A) and ``OUT_CHANNELS`` (domain B). No re-ID network:
    the stage is trained without evaluation. Methods that add networks (SPGAN's Siamese
    network) subclass it."""

    PROVIDES = ("gen", "dis")

    def __init__(self, gen_ab: nn.Module, gen_ba: nn.Module, dis_a: nn.Module, dis_b: nn.Module):
        super().__init__()
        self.gen_ab, self.gen_ba, self.dis_a, self.dis_b = gen_ab, gen_ba, dis_a, dis_b

    @classmethod
    def from_config(cls, cfg, num_classes: int = 0):  # num_classes: unused (no labels)
        c_a, c_b = cfg.MODEL.GEN.IN_CHANNELS, cfg.MODEL.GEN.OUT_CHANNELS
        return cls(
            build_generator(cfg, in_channels=c_a, out_channels=c_b),
            build_generator(cfg, in_channels=c_b, out_channels=c_a),
            build_discriminator(cfg, c_a),
            build_discriminator(cfg, c_b),
        )

    def generators(self) -> nn.ModuleList:
        """What the generator's optimiser updates (subclasses add their networks)."""
        return nn.ModuleList([self.gen_ab, self.gen_ba])

    def discriminators(self) -> nn.ModuleList:
        return nn.ModuleList([self.dis_a, self.dis_b])

    def generator_losses(self, out: dict, gan_gen_loss, identity: bool) -> dict:
        """The unweighted terms of the generators' phase from :meth:`CycleGANTrainer.
        translate`'s ``out``: the adversarial terms ``gan_ab`` / ``gan_ba``
        (``gan_gen_loss(D(fake))``), ``cycle`` = ``|F(G(a)) - a|_1 + |G(F(b)) - b|_1`` and,
        with ``identity``, ``identity`` = ``|G(b) - b|_1 + |F(a) - a|_1`` (Zhu et al. 2017,
        Eqs. 2-3 and section 5.2; weights ``LOSS.CYCLE`` / ``LOSS.IDENTITY`` are the
        engine's)."""
        a, b = out["a"], out["b"]
        terms = {
            "gan_ab": gan_gen_loss(self.dis_b(out["fake_b"])),
            "gan_ba": gan_gen_loss(self.dis_a(out["fake_a"])),
            "cycle": cycle_consistency_loss(out["rec_a"], a)
            + cycle_consistency_loss(out["rec_b"], b),
        }
        if identity:
            terms["identity"] = identity_mapping_loss(self.gen_ab(b), b) + identity_mapping_loss(
                self.gen_ba(a), a
            )
        return terms

    def discriminator_losses(self, fake_a, fake_b, a, b, gan_dis_loss) -> dict[str, torch.Tensor]:
        """The discriminators' terms on pooled fakes: ``dis_a`` / ``dis_b`` =
        ``0.5 gan_dis_loss(D(fake), D(real))`` (the released ``backward_D_basic`` halves
        each)."""
        return {
            "dis_a": 0.5 * gan_dis_loss(self.dis_a(fake_a), self.dis_a(a)),
            "dis_b": 0.5 * gan_dis_loss(self.dis_b(fake_b), self.dis_b(b)),
        }
