"""PN-GAN's pose-conditioned generator stage (Qian et al., ECCV 2018, section 3.1): ``G(x,
p)`` draws the person of ``x`` in the pose ``p``; trained on pairs of images of one identity,
with the real image in the target pose as the L1 target."""

from __future__ import annotations

import logging
import os

import torch
from torch import nn
from torch.utils.data import DataLoader

from ...data.build import build_group_loader, open_dataset, parse_dataset_entry
from ...data.datasets import read_image
from ...data.pose import build_keypoint_provider, pose_channels
from ...data.transforms import build_transforms
from ...engine import ENGINE_REGISTRY, IterationTrainer
from ...engine.optim import build_adam, build_linear_decay_scheduler
from ...losses import foreground_weighted_l1_loss, recon_l1_loss
from ...modeling.discriminators import build_discriminator
from ...modeling.generators import build_generator
from ...modeling.meta_arch import META_ARCH_REGISTRY
from ...offline_augmentation.config import GAN_SOLVER_KEYS
from ...offline_augmentation.cyclegan import adversarial_losses
from ...offline_augmentation.masks import mask_provider_from_cfg
from ...utils import comm
from .data import (
    CANONICAL_POSES,
    EpochStepDecay,
    OrderedPairBatchSampler,
    PosePairDataset,
    canonical_pose_maps,
    load_canonical_poses,
)
from .scores import heldout_pairs, mean_image, pose_transfer_scores

logger = logging.getLogger("dgnet_plugin")


@META_ARCH_REGISTRY.register()
class PoseGAN(nn.Module):
    """``gen``: ``[image (3); pose (36 maps, or a 3-channel picture with POSE.FORMAT
    picture)]`` -> image ``(N, 3, H, W)``, both in ``[-1, 1]`` (``MODEL.GEN.NAME``: the 9-block
    ``ResnetGenerator`` of the official code); ``dis``: image -> list of patch maps
    (``MODEL.DIS.NAME``: the released ``PNGANPatchDiscriminator``, or CycleGAN's
    ``PatchGANDiscriminator``). No re-ID network."""

    PROVIDES = ("gen", "dis")

    def __init__(self, gen: nn.Module, dis: nn.Module):
        super().__init__()
        self.gen, self.dis = gen, dis

    @classmethod
    def from_config(cls, cfg, num_classes: int = 0) -> PoseGAN:  # no labels
        pose = pose_channels(cfg.POSE.get("FORMAT", "maps"))
        gen = build_generator(cfg, in_channels=3 + pose, out_channels=3)
        return cls(gen, build_discriminator(cfg, 3))

    def forward(self, x: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, 3, H, W)`` and a target pose map ``(N, 36, H, W)`` -> ``(N, 3, H, W)``."""
        return self.gen(torch.cat([x, pose], dim=1))

    def generator_losses(self, fake, target, gan_gen_loss, target_mask=None, background=1.0):
        """The unweighted terms of the generator's phase: ``gan`` = ``gan_gen_loss(D(fake))``
        and ``pose_l1`` = the L1 to the target image (section 3.2, Eq. 1; with
        ``background`` < 1 the target's background pixels weigh ``background``,
        :func:`foreground_weighted_l1_loss`, ``target_mask`` ``(N, 1, H, W)`` in [0, 1])."""
        if background >= 1:
            l1 = recon_l1_loss(fake, target)
        else:
            l1 = foreground_weighted_l1_loss(fake, target, target_mask, background)
        return {"gan": gan_gen_loss(self.dis(fake)), "pose_l1": l1}

    def discriminator_losses(self, fake, real, gan_dis_loss) -> dict:
        """The discriminator's term: ``dis`` = ``gan_dis_loss(D(fake), D(real))``, the fake
        detached."""
        return {"dis": gan_dis_loss(self.dis(fake.detach()), self.dis(real))}


def pose_picture(pose: torch.Tensor) -> torch.Tensor:
    """``(N, 36, H, W)`` pose maps -> ``(N, 3, H, W)`` in ``[-1, 1]``: heat maps in red, limbs in
    green (for the grids); a ``(N, 3, H, W)`` pose picture (``POSE.FORMAT picture``) as it is."""
    if pose.shape[1] == 3:
        return pose
    joints = pose[:, :17].amax(1)
    limbs = pose[:, 17:].amax(1)
    return torch.stack([joints, limbs, torch.zeros_like(joints)], dim=1) * 2 - 1


def self_pair_draws(
    n: int, fraction: float, seed: int, iteration: int, rank: int = 0, world_size: int = 1
) -> torch.Tensor:
    """``(n,)`` bool: which of process ``rank``'s ``n`` pairs become self pairs at
    ``iteration`` (each with probability ``fraction``), drawn from a generator seeded by
    ``(seed, iteration)`` (a resumed run draws the same pairs) for the whole global batch of
    ``world_size`` equal contiguous shares, of which this share's are returned (N processes
    choose the same self pairs as one process)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + iteration)
    return torch.rand(n * world_size, generator=g)[rank * n : (rank + 1) * n] < fraction


def self_pairs(
    batch: dict, fraction: float, seed: int, iteration: int, rank: int = 0, world_size: int = 1
) -> dict:
    """``batch`` (a pair batch) where each pair's target becomes the source itself in its own
    pose with probability ``fraction`` (``PNGAN.SELF_PAIRS``; draws of
    :func:`self_pair_draws`, swaps of :func:`swap_self_pairs`: ``target``, ``pose`` and, with
    person masks, ``target_mask``). ``fraction`` 0: ``batch`` itself. With several processes
    ``batch`` is process ``rank``'s contiguous share of the global batch (``world_size``
    equal shares)."""
    if fraction <= 0:
        return batch
    own = self_pair_draws(batch["img"].shape[0], fraction, seed, iteration, rank, world_size)
    return swap_self_pairs(batch, own)


def swap_self_pairs(batch: dict, own: torch.Tensor) -> dict:
    """``batch`` with the pairs where ``own`` ``(N,)`` is true targeting the source itself:
    ``target`` <- ``img``, ``pose`` <- ``img_pose``, ``target_mask`` <- ``img_mask`` (when
    the batch has masks)."""
    own = own.to(batch["img"].device)[:, None, None, None]
    out = dict(batch)
    for tgt, src in (("target", "img"), ("pose", "img_pose"), ("target_mask", "img_mask")):
        if tgt in batch and own.any():
            out[tgt] = torch.where(own, batch[src], batch[tgt])
    return out


def self_pair_fraction(start: float, final: float, iteration: int, max_iter: int) -> float:
    """The self-pair fraction at ``iteration`` of ``max_iter``: ``start``
    (``PNGAN.SELF_PAIRS``) moving linearly to ``final`` (``PNGAN.SELF_PAIRS_FINAL``) at the last
    iteration; ``final < 0``: ``start`` throughout."""
    if final < 0 or max_iter <= 1:
        return start
    t = min(max(iteration / (max_iter - 1), 0.0), 1.0)
    return start + (final - start) * t


@ENGINE_REGISTRY.register()
class PNGANGeneratorEngine(IterationTrainer):
    """One PN-GAN generator iteration, on pairs ``(x_i, x_j)`` of one identity (every ordered
    pair once per epoch, or drawn uniformly: :meth:`pair_stream`) and ``x_j``'s pose map
    ``p_j``:

    1. generator: ``L_GAN(G(x_i, p_j))`` (LSGAN, ``LOSS.GAN_MODE``) ``+ LOSS.POSE_L1 *
       ||G(x_i, p_j) - x_j||_1`` (the official code's weight 10);
    2. discriminator: ``PNGAN.DIS_LOSS_WEIGHT * (L_D(real) + L_D(G(x_i, p_j)))`` on the
       same (detached) fake, where ``real`` is ``PNGAN.DIS_REAL``: ``source`` ``x_i`` (the
       released ``script/GAN/train.py``: ``netD(src_img)``, weight 1) or ``target`` ``x_j``.

    With ``PNGAN.SELF_PAIRS`` > 0 that fraction of the pairs has the source itself as the
    target, in its own pose (:func:`self_pairs`; not in the paper), moving linearly to
    ``PNGAN.SELF_PAIRS_FINAL`` over the stage when that is >= 0 (:func:`self_pair_fraction`).
    With ``PNGAN.BACKGROUND_WEIGHT`` < 1 the L1 weights the target's background by it against
    the target's person mask (``MASKS``; :func:`~dgnet_plugin.losses.
    foreground_weighted_l1_loss`; not in the paper).

    With each grid (``GAN.VIS_PERIOD`` and at the end) the stage logs the held-out figures of
    :mod:`.scores` (``metrics.json``: ``pose_transfer/*``) and draws held-out people in the
    canonical poses (``images/canonical_views_<iter>.jpg``).

    Adam ``SOLVER.GEN`` / ``SOLVER.DIS`` (2e-4, betas (0.5, 0.999)). With
    ``PNGAN.ITERS_PER_EPOCH`` > 0 (set by the stage from ``PNGAN.EPOCHS``, see
    :func:`~.stages.generator_schedule`) the released per-epoch decay
    (:func:`~.data.epoch_step_decay_factor`, from epoch ``PNGAN.DECAY_EPOCH``); else a
    per-iteration linear decay to 0 from ``GAN.DECAY_START``. Images in ``[-1, 1]`` at
    ``INPUT.SIZE_TEST`` = ``GAN.SIZE`` (the stage's resize-only transform: a flip would swap
    the person's left and right against the pose map); keypoints from ``POSE.SOURCE``.
    """

    REQUIRES = ("gen", "dis")
    AMP_PHASES = ("gen", "dis")
    SOLVER_KEYS = GAN_SOLVER_KEYS

    def __init__(self, cfg):
        super().__init__(cfg)
        self.gan_gen_loss, self.gan_dis_loss = adversarial_losses(cfg.LOSS.GAN_MODE)
        self.pairs = PosePairDataset(
            self.train_items,
            # a pose model runs in the loaders' worker processes, where CUDA cannot be used
            build_keypoint_provider(cfg.POSE.SOURCE, torch.device("cpu")),
            build_transforms(cfg, is_train=False),
            tuple(cfg.INPUT.SIZE_TEST),
            cfg.POSE,
            source_pose=max(cfg.PNGAN.SELF_PAIRS, cfg.PNGAN.SELF_PAIRS_FINAL) > 0,
            masks=self._masks() if cfg.PNGAN.BACKGROUND_WEIGHT < 1 else None,
        )
        self._scores = None

    def build_optimizers(self, cfg) -> dict:
        m, out = self.model, {}
        for name, net, solver in (("gen", m.gen, cfg.SOLVER.GEN), ("dis", m.dis, cfg.SOLVER.DIS)):
            opt = build_adam(net, solver, self.device)
            out[name] = (opt, self.build_scheduler(opt))
        return out

    def build_train_loader(self, start: int):
        return self.pair_stream(start)

    def _masks(self):
        """``MASKS``' provider on the run's device; a mask model segments every training
        image here, before the loaders' worker processes read the cache."""
        masks = mask_provider_from_cfg(self.cfg, self.device)
        if hasattr(masks, "prepare"):
            masks.prepare(it[0] for it in self.train_items)
        return masks

    def build_scheduler(self, opt):
        """The released per-epoch decay with ``PNGAN.ITERS_PER_EPOCH`` > 0, else the linear
        per-iteration decay from ``GAN.DECAY_START`` (both reach 0 at the end)."""
        cfg = self.cfg
        if cfg.PNGAN.ITERS_PER_EPOCH > 0:
            decay = EpochStepDecay(cfg.PNGAN.ITERS_PER_EPOCH, cfg.PNGAN.DECAY_EPOCH)
            return torch.optim.lr_scheduler.LambdaLR(opt, decay)
        return build_linear_decay_scheduler(opt, cfg.GAN.DECAY_START, cfg.SOLVER.MAX_ITER)

    def train_step(self, batch, iteration: int) -> dict[str, torch.Tensor]:
        cfg, m = self.cfg, self.model
        p = cfg.PNGAN
        fraction = self_pair_fraction(
            p.SELF_PAIRS, p.SELF_PAIRS_FINAL, iteration, cfg.SOLVER.MAX_ITER
        )
        batch = self_pairs(
            batch, fraction, cfg.SEED, iteration, comm.get_rank(), comm.get_world_size()
        )
        x, target, pose = batch["img"], batch["target"], batch["pose"]
        m.dis.requires_grad_(False)
        with self.autocast():
            fake = m(x, pose)
            terms = m.generator_losses(
                fake, target, self.gan_gen_loss, batch.get("target_mask"), p.BACKGROUND_WEIGHT
            )
        logged = self.step_phase("gen", terms, {"pose_l1": cfg.LOSS.POSE_L1})
        m.dis.requires_grad_(True)
        real = x if p.DIS_REAL == "source" else target
        with self.autocast():
            d_terms = m.discriminator_losses(fake, real, self.gan_dis_loss)
        logged.update(self.step_phase("dis", d_terms, {"dis": p.DIS_LOSS_WEIGHT}))
        return logged

    def pair_stream(self, start: int):
        """Endless pair batches from iteration ``start``: ``PNGAN.PAIR_SAMPLING``
        ``permutations`` (every ordered same-identity pair once per epoch, shuffled,
        :class:`~.data.OrderedPairBatchSampler`: the released loader) or ``uniform`` (the
        source uniform over the images, the target uniform among its identity's images,
        :func:`~dgnet_plugin.data.build.build_group_loader`)."""
        cfg = self.cfg
        groups = list(self.pairs.by_pid.values())
        if cfg.PNGAN.PAIR_SAMPLING == "uniform":
            return build_group_loader(cfg, self.pairs, groups, start=start)
        sampler = OrderedPairBatchSampler(
            groups,
            cfg.SOLVER.IMS_PER_BATCH,
            cfg.SEED,
            start,
            comm.get_rank(),
            comm.get_world_size(),
        )
        workers = cfg.DATALOADER.NUM_WORKERS
        loader = DataLoader(
            self.pairs,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
        )
        return iter(loader)

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

    def visualize(self, iteration: int) -> None:
        """``images/pose_transfer_<iter>.jpg``: rows source, target pose, G(source, pose),
        the real target image."""
        b = self.display_pairs(self.cfg.VIS.NUM_IMAGES)
        fake = self.model(b["img"], b["pose"])
        rows = [b["img"], pose_picture(b["pose"]), fake, b["target"]]
        self.save_samples("pose_transfer", rows, iteration)
        self.log_scores(iteration)
        self.draw_canonical_views(iteration)

    def draw_canonical_views(self, iteration: int) -> None:
        """``images/canonical_views_<iter>.jpg``: the first ``VIS.NUM_IMAGES`` held-out
        sources (:meth:`score_data`; first row) drawn in each canonical pose (one row per
        pose, the pose pictured in the first column): what the generation stage does to the
        training images, on people the generator never saw. Called by :meth:`visualize` (eval
        mode, no gradient)."""
        if not self._scores:
            return
        src = self._scores["source"][: self.cfg.VIS.NUM_IMAGES]
        canonical = self._scores["canonical"]
        rows = [torch.cat([torch.full_like(src[:1], -1.0), src])]
        for k in range(canonical.shape[0]):
            c = canonical[k : k + 1]
            fake = self.model(src, c.expand(src.shape[0], -1, -1, -1))
            rows.append(torch.cat([pose_picture(c), fake]))
        self.save_samples("canonical_views", rows, iteration)

    def score_data(self) -> dict | None:
        """The fixed held-out set of :mod:`.scores`: 64 cross-camera pairs of the query images
        of the training dataset (``DATASETS.NAMES[0]``: its test identities, never trained on),
        their target poses (and person masks with ``MASKS.FOLDER``), the mean of every 4th
        training image and the canonical pose maps; ``None`` without query images with poses
        or canonical poses (the poses stage not run)."""
        cfg, tf = self.cfg, build_transforms(self.cfg, is_train=False)
        poses = os.path.join(os.path.dirname(os.path.abspath(cfg.OUTPUT_DIR)), CANONICAL_POSES)
        if not os.path.isfile(poses):
            return None
        data = open_dataset(*parse_dataset_entry(cfg.DATASETS.NAMES[0], cfg.DATASETS.ROOT))
        pairs = heldout_pairs(data.query, self.pairs.provider, 64)
        if not pairs:
            return None
        size = tuple(cfg.INPUT.SIZE_TEST)
        out = {
            "source": torch.stack([tf(read_image(a)) for a, _ in pairs]),
            "target": torch.stack([tf(read_image(b)) for _, b in pairs]),
            "target_pose": torch.stack([self.pairs.render(b) for _, b in pairs]),
            "mean": mean_image([it[0] for it in self.pairs.items], tf),
            "canonical": canonical_pose_maps(load_canonical_poses(poses), size, cfg.POSE),
        }
        if cfg.MASKS.FOLDER or cfg.MASKS.MODEL:
            masks = self.pairs.masks  # the training pairs' provider, when the L1 uses masks
            if masks is None:
                masks = mask_provider_from_cfg(cfg, self.device)
            out["target_mask"] = torch.stack([masks(b, (size[1], size[0])) for _, b in pairs])
        return {k: v.to(self.device) for k, v in out.items()}

    def log_scores(self, iteration: int) -> None:
        """Log and write to ``metrics.json`` (``pose_transfer/*``) the held-out figures of
        :func:`~.scores.pose_transfer_scores`: the transfer L1 beside the source's and the
        mean image's, and the pose sensitivity. Called by :meth:`visualize` (eval mode, no
        gradient)."""
        if self._scores is None:
            self._scores = self.score_data() or {}
        if not self._scores:
            return
        s = pose_transfer_scores(self.model, **self._scores)
        n = self._scores["source"].shape[0]
        line = ", ".join(f"{k} {v:.4f}" for k, v in s.items())
        logger.info(f"held-out pose transfer at iteration {iteration} ({n} pairs): {line}")
        if self.metrics is not None:
            self.metrics.write(
                {"iteration": iteration, **{f"pose_transfer/{k}": v for k, v in s.items()}}
            )
