"""LSRO's first stage: a DCGAN trained on the re-ID training images (Zheng et al., ICCV 2017,
section 3.1; Radford et al. 2016). No labels are used."""

from __future__ import annotations

import torch
from torch import nn

from ...engine import ENGINE_REGISTRY, IterationTrainer
from ...engine.optim import build_adam
from ...losses import vanilla_gan_dis_loss, vanilla_gan_gen_loss
from ...modeling.discriminators import build_discriminator
from ...modeling.generators import build_generator
from ...modeling.meta_arch import META_ARCH_REGISTRY
from ...offline_augmentation.config import GAN_SOLVER_KEYS


@META_ARCH_REGISTRY.register()
class DCGAN(nn.Module):
    """``gen``: noise ``(N, MODEL.GEN.Z_DIM)`` -> image ``(N, 3, H, W)`` in ``[-1, 1]``
    (``MODEL.GEN.NAME``, ``DCGANGenerator``); ``dis``: image -> ``[logits (N, 1, 1, 1)]``
    (``MODEL.DIS.NAME``, ``DCGANDiscriminator``), ``(H, W)`` = ``INPUT.SIZE_TRAIN`` of the
    stage (the authors' fork: 128x128). No re-ID network."""

    PROVIDES = ("gen", "dis")

    def __init__(self, gen: nn.Module, dis: nn.Module):
        super().__init__()
        self.gen, self.dis = gen, dis

    @classmethod
    def from_config(cls, cfg, num_classes: int = 0) -> DCGAN:  # no labels
        return cls(build_generator(cfg), build_discriminator(cfg, 3))

    def losses(self, phase: str, real: torch.Tensor, fake: torch.Tensor) -> dict:
        """The unweighted term of update phase ``dis`` (``BCE(D(x), 1) + BCE(D(G(z)), 0)``,
        ``G(z)`` detached) or ``gen`` (``BCE(D(G(z)), 1)``, the non-saturating loss)."""
        if phase == "dis":
            return {"dis": vanilla_gan_dis_loss(self.dis(fake.detach()), self.dis(real))}
        return {"gan": vanilla_gan_gen_loss(self.dis(fake))}


@ENGINE_REGISTRY.register()
class LSRODCGANEngine(IterationTrainer):
    """One DCGAN iteration (Goodfellow et al. 2014, Algorithm 1, with DCGAN's settings): a
    batch of real images (in ``[-1, 1]``: the stage's pixel mean and std are 0.5) and as many
    noise vectors ``z`` (``MODEL.GEN.NOISE``: U(-1, 1) in the authors' fork);

    1. discriminator: ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` (:func:`vanilla_gan_dis_loss`);
    2. generator, ``LSRO.G_STEPS_PER_D`` times on the same ``z`` (``G(z)`` drawn again
       after each step): the non-saturating ``BCE(D(G(z)), 1)`` (:func:`vanilla_gan_gen_loss`).
       The authors' fork runs the generator step twice ("Run g_optim twice to make sure that
       d_loss does not go to zero", layumi/DCGAN-tensorflow ``model.py`` ``train``).

    Adam ``SOLVER.GEN`` / ``SOLVER.DIS`` (DCGAN: lr 2e-4, beta1 0.5). The logged ``gan`` is
    the last generator step's loss.
    """

    REQUIRES = ("gen", "dis")
    AMP_PHASES = ("dis", "gen")
    SOLVER_KEYS = GAN_SOLVER_KEYS

    def build_optimizers(self, cfg) -> dict:
        return {
            "gen": (build_adam(self.model.gen, cfg.SOLVER.GEN, self.device), None),
            "dis": (build_adam(self.model.dis, cfg.SOLVER.DIS, self.device), None),
        }

    def train_step(self, batch, iteration: int) -> dict[str, torch.Tensor]:
        real = batch["img"]  # the identities are not used
        m = self.model
        z = m.gen.sample_noise(real.shape[0], device=self.device)
        with self.autocast():
            fake = m.gen(z)
            d_terms = m.losses("dis", real, fake)
        logged = self.step_phase("dis", d_terms)
        m.dis.requires_grad_(False)
        for step in range(self.cfg.LSRO.G_STEPS_PER_D):
            with self.autocast():
                if step:  # the generator changed: draw G(z) again
                    fake = m.gen(z)
                g_terms = m.losses("gen", real, fake)
            logged.update(self.step_phase("gen", g_terms))
        m.dis.requires_grad_(True)
        return logged

    def visualize(self, iteration: int) -> None:
        """``images/samples_<iter>.jpg``: two rows of ``VIS.NUM_IMAGES`` images from fixed
        noise (the same ``z`` at every iteration: the grids show the generator learning)."""
        n = self.cfg.VIS.NUM_IMAGES
        z = self.model.gen.sample_noise(2 * n, torch.Generator().manual_seed(0), self.device)
        fake = self.model.gen(z)
        self.save_samples("samples", [fake[:n], fake[n:]], iteration)
