"""PN-GAN's pose-conditioned generator stage (Qian et al., ECCV 2018, section 3.1): ``G(x,
p)`` draws the person of ``x`` in the pose ``p``; trained on pairs of images of one identity,
with the real image in the target pose as the L1 target."""

from __future__ import annotations

import os

import torch
from torch import nn

from ...data.build import build_group_loader
from ...data.pose import POSE_CHANNELS, build_keypoint_provider
from ...data.transforms import build_transforms
from ...engine import ENGINE_REGISTRY, GAN_SOLVER_KEYS, IterationTrainer
from ...engine.cyclegan import adversarial_losses
from ...engine.optim import build_adam, build_linear_decay_scheduler
from ...losses import recon_l1_loss
from ...modeling.discriminators import build_discriminator
from ...modeling.generators import build_generator
from ...modeling.meta_arch import META_ARCH_REGISTRY
from ...utils import comm
from ...utils.visualization import save_grid
from .data import PosePairDataset


@META_ARCH_REGISTRY.register()
class PoseGAN(nn.Module):
    """``gen``: ``[image (3); pose map (36)]`` ``(N, 39, H, W)`` -> image ``(N, 3, H, W)``, both
    in ``[-1, 1]`` (``MODEL.GEN.NAME``: the 9-block ``ResnetGenerator`` of the official code);
    ``dis``: image -> list of patch maps (``MODEL.DIS.NAME``: ``PatchGANDiscriminator``).
    No re-ID network."""

    PROVIDES = ("gen", "dis")

    def __init__(self, gen: nn.Module, dis: nn.Module):
        super().__init__()
        self.gen, self.dis = gen, dis

    @classmethod
    def from_config(cls, cfg, num_classes: int = 0) -> PoseGAN:  # no labels
        gen = build_generator(cfg, in_channels=3 + POSE_CHANNELS, out_channels=3)
        return cls(gen, build_discriminator(cfg, 3))

    def forward(self, x: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, 3, H, W)`` and a target pose map ``(N, 36, H, W)`` -> ``(N, 3, H, W)``."""
        return self.gen(torch.cat([x, pose], dim=1))


def pose_picture(pose: torch.Tensor) -> torch.Tensor:
    """``(N, 36, H, W)`` pose maps -> ``(N, 3, H, W)`` in ``[-1, 1]``: heat maps in red, limbs in
    green (for the grids)."""
    joints = pose[:, :17].amax(1)
    limbs = pose[:, 17:].amax(1)
    return torch.stack([joints, limbs, torch.zeros_like(joints)], dim=1) * 2 - 1


def self_pairs(
    batch: dict, fraction: float, seed: int, iteration: int, rank: int = 0, world_size: int = 1
):
    """``(source, target, target pose)`` of a pair batch, where each pair's target becomes the
    source itself in its own pose (``batch["img"]``, ``batch["img_pose"]``) with probability
    ``fraction`` (``PNGAN.SELF_PAIRS``), drawn from a generator seeded by ``(seed,
    iteration)`` (a resumed run draws the same pairs). ``fraction`` 0: the batch unchanged.

    With several processes ``batch`` is process ``rank``'s contiguous share of the global
    batch (``world_size`` equal shares): the draws are made for the whole global batch and
    this share's are used, so N processes choose the same self pairs as one process."""
    x, target, pose = batch["img"], batch["target"], batch["pose"]
    if fraction <= 0:
        return x, target, pose
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed * 1_000_003 + iteration)
    draws = torch.rand(n * world_size, generator=g)[rank * n : (rank + 1) * n]
    own = (draws < fraction).to(x.device)[:, None, None, None]
    return x, torch.where(own, x, target), torch.where(own, batch["img_pose"], pose)


@ENGINE_REGISTRY.register()
class PNGANGeneratorEngine(IterationTrainer):
    """One PN-GAN generator iteration, on pairs ``(x_i, x_j)`` of one identity (``x_j`` drawn
    uniformly among the identity's other images with a pose) and ``x_j``'s pose map ``p_j``:

    1. generator: ``L_GAN(G(x_i, p_j))`` (LSGAN, ``LOSS.GAN_MODE``) ``+ LOSS.POSE_L1 *
       ||G(x_i, p_j) - x_j||_1`` (the official code's weight 10);
    2. discriminator: ``(L_D(x_j) + L_D(G(x_i, p_j))) / 2``.

    With ``PNGAN.SELF_PAIRS`` > 0 that fraction of the pairs has the source itself as the
    target, in its own pose (:func:`self_pairs`; not in the paper).

    Adam ``SOLVER.GEN`` / ``SOLVER.DIS`` (2e-4, betas (0.5, 0.999)), linear decay to 0 from
    ``GAN.DECAY_START``. Images in ``[-1, 1]`` at ``INPUT.SIZE_TEST`` = ``GAN.SIZE`` (the
    stage's resize-only transform: a flip would swap the person's left and right against the
    pose map); keypoints from ``POSE.SOURCE``.
    """

    REQUIRES = ("gen", "dis")
    AMP_PHASES = ("gen", "dis")
    SOLVER_KEYS = GAN_SOLVER_KEYS

    def __init__(self, cfg):
        super().__init__(cfg)
        m = self.model
        for name, net, solver in (("gen", m.gen, cfg.SOLVER.GEN), ("dis", m.dis, cfg.SOLVER.DIS)):
            opt = build_adam(net, solver, self.device)
            sched = build_linear_decay_scheduler(opt, cfg.GAN.DECAY_START, cfg.SOLVER.MAX_ITER)
            self.register_optimizer(name, opt, sched)
        self.gan_gen_loss, self.gan_dis_loss = adversarial_losses(cfg.LOSS.GAN_MODE)
        self.pairs = PosePairDataset(
            self.train_items,
            build_keypoint_provider(cfg.POSE.SOURCE),
            build_transforms(cfg, is_train=False),
            tuple(cfg.INPUT.SIZE_TEST),
            cfg.POSE,
            source_pose=cfg.PNGAN.SELF_PAIRS > 0,
        )
        self._stream = None

    def run_step(self, iteration: int) -> dict[str, torch.Tensor]:
        cfg, m, opt = self.cfg, self.model, self.optimizers
        if self._stream is None:
            groups = list(self.pairs.by_pid.values())
            self._stream = build_group_loader(cfg, self.pairs, groups, start=iteration)
        batch = self.to_device(next(self._stream))
        x, target, pose = self_pairs(
            batch, cfg.PNGAN.SELF_PAIRS, cfg.SEED, iteration, comm.get_rank(), comm.get_world_size()
        )
        m.dis.requires_grad_(False)
        with self.autocast():
            fake = m(x, pose)
            losses = {
                "gan": self.gan_gen_loss(m.dis(fake)),
                "pose_l1": cfg.LOSS.POSE_L1 * recon_l1_loss(fake, target),
            }
        opt["gen"].zero_grad(set_to_none=True)
        self.amp.backward_step(sum(losses.values()), opt["gen"], phase="gen")
        m.dis.requires_grad_(True)
        with self.autocast():
            d_loss = 0.5 * self.gan_dis_loss(m.dis(fake.detach()), m.dis(target))
        opt["dis"].zero_grad(set_to_none=True)
        self.amp.backward_step(d_loss, opt["dis"], phase="dis")
        return {**{k: v.detach() for k, v in losses.items()}, "dis": d_loss.detach()}

    def display_pairs(self, n: int) -> dict:
        """``n`` fixed pairs spread over the data (source ``k``, target: the next image of
        its identity), batched on the device."""
        step = max(len(self.pairs) // max(n, 1), 1)
        keys = []
        for i in range(0, len(self.pairs), step)[:n]:
            group = self.pairs.by_pid[int(self.pairs.items[i][1])]
            keys.append((i, group[(group.index(i) + 1) % len(group)]))
        samples = [self.pairs[k] for k in keys]
        return {
            f: torch.stack([s[f] for s in samples]).to(self.device)
            for f in ("img", "target", "pose")
        }

    @torch.no_grad()
    def visualize(self, iteration: int) -> None:
        """``images/pose_transfer_<iter>.jpg``: rows source, target pose, G(source, pose),
        the real target image."""
        b = self.display_pairs(self.cfg.VIS.NUM_IMAGES)
        was = self.model.training
        self.model.eval()
        fake = self.model(b["img"], b["pose"])
        self.model.train(was)
        rows = [b["img"], pose_picture(b["pose"]), fake, b["target"]]
        path = os.path.join(self.output_dir, "images", f"pose_transfer_{iteration:08d}.jpg")
        grid = save_grid(rows, path, self.cfg.INPUT.PIXEL_MEAN, self.cfg.INPUT.PIXEL_STD)
        if self.writer is not None:
            self.writer.add_image("pose_transfer", grid, iteration)
