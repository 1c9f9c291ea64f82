"""CycleGAN (Zhu et al., ICCV 2017) as a meta-architecture: two translators and two
discriminators. The networks of CamStyle, SPGAN and PTGAN's translation stage."""

from __future__ import annotations

from torch import nn

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
