"""A toy method package, as a new method's author writes one: a minimal unconditional GAN
stage (no labels used, no re-ID network, no evaluation) built only from shared parts.

Everything it owns is in this folder; registering it is one line: ``import toy_gan`` (a
method shipped with the package adds ``from . import toy_gan`` to
``dgnet_plugin/methods/__init__.py`` instead).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from dgnet_plugin.config import CfgNode, Method, merge_missing, register_method
from dgnet_plugin.engine import ENGINE_REGISTRY, IterationTrainer
from dgnet_plugin.engine.optim import build_adam
from dgnet_plugin.losses import lsgan_dis_loss, lsgan_gen_loss
from dgnet_plugin.modeling.blocks import Conv2dBlock
from dgnet_plugin.modeling.discriminators import MultiScaleDiscriminator
from dgnet_plugin.modeling.meta_arch import META_ARCH_REGISTRY
from dgnet_plugin.utils.visualization import save_grid

# ------------------------------------------------------------------ config (add_toy_config)
_T = CfgNode()
_T.MODEL = CfgNode()
_T.MODEL.GEN = CfgNode()
_T.MODEL.GEN.Z_DIM = 16  # noise size


def add_toy_config(cfg):
    merge_missing(cfg, _T)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "ToyGANEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "ToyGAN"
    return cfg


# ------------------------------------------------------------------ meta-architecture
@META_ARCH_REGISTRY.register()
class ToyGAN(nn.Module):
    """``gen``: noise ``(N, Z)`` -> image ``(N, 3, H, W)``; ``dis``: the shared multi-scale
    discriminator with one scale."""

    PROVIDES = ("gen", "dis")

    def __init__(self, z_dim: int, size: tuple[int, int]):
        super().__init__()
        self.z_dim, self.size = z_dim, size
        h, w = size[0] // 4, size[1] // 4
        self.gen = nn.Sequential(
            nn.Linear(z_dim, 8 * h * w),
            nn.Unflatten(1, (8, h, w)),
            nn.Upsample(scale_factor=4),
            Conv2dBlock(8, 3, 3, 1, 1, activation="none"),
        )
        self.dis = MultiScaleDiscriminator(3, dim=8, n_layer=1, n_res=0, num_scales=1)

    @classmethod
    def from_config(cls, cfg, num_classes: int):  # num_classes: unused, no labels
        return cls(cfg.MODEL.GEN.Z_DIM, tuple(cfg.INPUT.SIZE_TRAIN))

    def losses(self, phase: str, real: torch.Tensor, fake: torch.Tensor) -> dict:
        """The unweighted LSGAN terms of update phase ``dis`` or ``gen`` (the loss rule)."""
        if phase == "dis":
            return {"dis_adv": lsgan_dis_loss(self.dis(fake.detach()), self.dis(real))}
        return {"gan": lsgan_gen_loss(self.dis(fake))}


# ------------------------------------------------------------------ engine
@ENGINE_REGISTRY.register()
class ToyGANEngine(IterationTrainer):
    REQUIRES = ("gen", "dis")
    AMP_PHASES = ("dis", "gen")

    def build_optimizers(self, cfg) -> dict:
        return {
            "gen": (build_adam(self.model.gen, cfg.SOLVER.GEN, self.device), None),
            "dis": (build_adam(self.model.dis, cfg.SOLVER.DIS, self.device), None),
        }

    def train_step(self, batch: dict, iteration: int) -> dict:
        real, m = batch["img"], self.model  # the labels are not used
        fake = m.gen(torch.randn(real.shape[0], m.z_dim, device=self.device))
        d = self.step_phase("dis", m.losses("dis", real, fake))
        g = self.step_phase("gen", m.losses("gen", real, fake))
        return {**d, **g}

    def visualize(self, iteration: int) -> None:
        z = torch.randn(4, self.model.z_dim, generator=torch.Generator().manual_seed(0))
        path = os.path.join(self.output_dir, "images", f"samples_{iteration:08d}.jpg")
        mean, std = self.cfg.INPUT.PIXEL_MEAN, self.cfg.INPUT.PIXEL_STD
        save_grid([self.model.gen(z.to(self.device))], path, mean, std)


METHOD = register_method(
    Method(name="toy_gan", title="Toy GAN", add_config=add_toy_config, engines=("ToyGANEngine",))
)
