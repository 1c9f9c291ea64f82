"""PN-GAN's pipeline (Qian et al., ECCV 2018, Fig. 2): the canonical poses (k-means over the
training keypoints), the pose-conditioned generator, every (chosen) training image drawn in
the canonical poses into a generated set, then re-ID on real + pose-normalised images (the
main run), after the real-only baseline."""

from __future__ import annotations

import logging
import os

import torch

from ...data.datasets import parse_market_name, read_image
from ...data.generated import generated_file_name, write_generated_set
from ...data.transforms import build_transforms
from ...engine.stages import Stage, StageContext
from ...offline_augmentation.config import GAN_STAGE_IGNORES, gan_stage_config
from ...offline_augmentation.cyclegan import load_translator
from ...offline_augmentation.engine import (
    baseline_stage,
    generated_root,
    generation_stage,
    training_stage,
)
from ...utils.visualization import save_grid
from .data import (
    CANONICAL_POSES,
    canonical_pose_maps,
    compute_canonical_poses,
    load_canonical_poses,
    pair_schedule,
    save_canonical_poses,
)
from .gan import pose_picture

logger = logging.getLogger("dgnet_plugin")
GENERATOR_NAME = "pngan pose generator"


def poses_path(cfg) -> str:
    return os.path.join(cfg.OUTPUT_DIR, CANONICAL_POSES)


def pose_gan_dir(cfg) -> str:
    """The generator stage's ``OUTPUT_DIR``: ``OUTPUT_DIR/<GAN.OUTPUT_SUBDIR>``."""
    return os.path.join(cfg.OUTPUT_DIR, cfg.GAN.OUTPUT_SUBDIR)


def compute_poses(ctx: StageContext) -> None:
    """Write ``OUTPUT_DIR/canonical_poses.json`` and a picture of the poses
    (``canonical_poses.jpg``)."""
    from ...data import load_train_set

    cfg = ctx.cfg
    items, _ = load_train_set(cfg)
    poses = compute_canonical_poses(cfg.POSE, items, ctx.device)
    save_canonical_poses(poses, poses_path(cfg))
    maps = canonical_pose_maps(load_canonical_poses(poses_path(cfg)), tuple(cfg.GAN.SIZE), cfg.POSE)
    save_grid(
        [pose_picture(maps)],
        os.path.join(cfg.OUTPUT_DIR, "canonical_poses.jpg"),
        (0.5,) * 3,
        (0.5,) * 3,
    )
    logger.info(
        "%d canonical poses from %d training poses (cluster sizes %s)",
        len(poses["counts"]),
        poses["num_poses"],
        poses["counts"],
    )


def source_items(cfg, items: list) -> list:
    """The training items to pose-normalise: all, or ``PNGAN.NUM_SOURCES`` spread evenly."""
    n = cfg.PNGAN.NUM_SOURCES
    if not n or n >= len(items):
        return list(items)
    return [items[round(i * len(items) / n)] for i in range(n)]


def generation_plan(cfg, items: list, num_poses: int) -> list[dict]:
    """One entry per (source image, canonical pose): ``<pid>_c<cam>s0_<serial>_p<k>.jpg``
    with the source's Market pid and camera, ``target`` = ``pose<k>``."""
    plan = []
    for serial, item in enumerate(source_items(cfg, items)):
        pid, cam = parse_market_name(item[0])
        for k in range(num_poses):
            plan.append(
                {
                    "file": generated_file_name(pid, cam, serial, f"p{k}"),
                    "source": os.path.abspath(item[0]),
                    "source_pid": pid,
                    "source_camid": cam,
                    "target": f"pose{k}",
                }
            )
    return plan


def generate(ctx: StageContext) -> None:
    """Every source image in every canonical pose (``[0, 1]``, the generator's size), with
    provenance, into :func:`generated_root`; resumable."""
    from ...data import load_train_set

    cfg = ctx.cfg
    model, gcfg, weights = load_translator(pose_gan_dir(cfg), ctx.device)
    device = next(model.parameters()).device
    size = tuple(gcfg.INPUT.SIZE_TEST)
    maps = canonical_pose_maps(load_canonical_poses(poses_path(cfg)), size, cfg.POSE).to(device)
    tf = build_transforms(gcfg, is_train=False)  # resize, [-1, 1]
    items, _ = load_train_set(cfg)

    def translate(batch: list[dict]) -> torch.Tensor:
        x = torch.stack([tf(read_image(e["source"])) for e in batch]).to(device)
        pose = torch.stack([maps[int(e["target"][4:])] for e in batch])
        return (model(x, pose) + 1) / 2

    write_generated_set(
        generated_root(cfg),
        generation_plan(cfg, items, maps.shape[0]),
        translate,
        GENERATOR_NAME,
        weights,
        cfg.GENERATED.BATCH_SIZE,
    )


def generator_schedule(cfg) -> dict | None:
    """With ``PNGAN.EPOCHS`` > 0, the generator stage's length in released epochs of ordered
    same-identity pairs (:func:`~.data.pair_schedule` of the training images with a pose in
    ``POSE.SOURCE``, batch ``GAN.IMS_PER_BATCH``, decay from epoch ``PNGAN.DECAY_EPOCH``),
    logged; ``None`` with ``PNGAN.EPOCHS`` 0 (``GAN.MAX_ITER`` / ``GAN.DECAY_START`` as
    given)."""
    from ...data import load_train_set
    from ...data.pose import build_keypoint_provider

    p = cfg.PNGAN
    if p.EPOCHS <= 0:
        return None
    items, _ = load_train_set(cfg)
    provider = build_keypoint_provider(cfg.POSE.SOURCE)
    s = pair_schedule(
        items,
        lambda path: provider(path) is not None,
        cfg.GAN.IMS_PER_BATCH,
        p.EPOCHS,
        p.DECAY_EPOCH,
    )
    logger.info(
        "PN-GAN generator: %d ordered same-identity pairs of %d images (%d identities) per "
        "epoch = %d iterations of %d; %d epochs = %d iterations, decay from epoch %d "
        "(iteration %d)",
        s["pairs"], s["images"], s["identities"], s["iters_per_epoch"], cfg.GAN.IMS_PER_BATCH,
        p.EPOCHS, s["max_iter"], p.DECAY_EPOCH, s["decay_start"],
    )  # fmt: skip
    return s


def pose_gan_config(cfg) -> dict:
    """The merges of the generator stage's derived config: :func:`gan_stage_config`, its engine
    and meta-architecture and, with ``PNGAN.EPOCHS`` > 0, the length of
    :func:`generator_schedule` (``SOLVER.MAX_ITER``, ``GAN.DECAY_START``,
    ``PNGAN.ITERS_PER_EPOCH``: the engine then decays the rate once per epoch, as the
    released ``LambdaLR``)."""
    opts = {
        **gan_stage_config(cfg),
        "ENGINE.NAME": "PNGANGeneratorEngine",
        "MODEL.META_ARCHITECTURE": "PoseGAN",
    }
    s = generator_schedule(cfg)
    if s is not None:
        opts["SOLVER.MAX_ITER"] = s["max_iter"]
        opts["GAN.DECAY_START"] = s["decay_start"]
        opts["PNGAN.ITERS_PER_EPOCH"] = s["iters_per_epoch"]
    return opts


def pngan_stages(cfg) -> list[Stage]:
    """``poses``, ``pose_gan`` (the generator's run), ``generate``, ``baseline``."""
    return [
        Stage(
            "poses",
            compute_poses,
            lambda ctx: os.path.isfile(poses_path(ctx.cfg)),
            f"{cfg.POSE.NUM_CANONICAL} canonical poses by k-means over the training keypoints",
            outputs=lambda c: [poses_path(c)],
            keys=("POSE", "DATASETS.ROOT", "DATASETS.NAMES"),
        ),
        training_stage(
            "pose_gan",
            "pose-conditioned generator on same-identity pairs",
            pose_gan_dir,
            pose_gan_config,
            GAN_STAGE_IGNORES,
        ),
        generation_stage(generate, "training images in the canonical poses"),
        baseline_stage(),
    ]
