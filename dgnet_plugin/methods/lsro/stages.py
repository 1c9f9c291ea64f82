"""LSRO's pipeline (Zheng et al., ICCV 2017, Fig. 2): train the DCGAN, write its images (no
identity) into a generated set, then re-ID on real + generated images (the main run), after
the comparison runs of ``LSRO.COMPARE``."""

from __future__ import annotations

import logging
import os

import torch

from ...data.generated import generated_file_name, write_generated_set
from ...engine.stages import Stage, StageContext
from ...modeling.generators.dcgan import draw_noise
from ...offline_augmentation.config import GAN_STAGE_IGNORES, gan_stage_config
from ...offline_augmentation.cyclegan import load_translator
from ...offline_augmentation.engine import (
    BASELINE_SUBDIR,
    baseline_stage,
    generated_root,
    generation_stage,
    training_stage,
)
from .engine import COMPARISON_ROWS, comparison_dir

logger = logging.getLogger("dgnet_plugin")
GENERATOR_NAME = "lsro dcgan"


def dcgan_dir(cfg) -> str:
    """The DCGAN stage's ``OUTPUT_DIR``: ``OUTPUT_DIR/<GAN.OUTPUT_SUBDIR>``."""
    return os.path.join(cfg.OUTPUT_DIR, cfg.GAN.OUTPUT_SUBDIR)


def noise_for(serial: int, seed: int, z_dim: int, kind: str = "normal") -> torch.Tensor:
    """The noise vector of generated image ``serial``: ``kind`` noise (``uniform`` U(-1, 1),
    ``normal`` N(0, I); the DCGAN's ``MODEL.GEN.NOISE``) from a generator seeded by
    ``(seed, serial)``, so a resumed generation draws exactly the images it would have."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + serial)
    return draw_noise((z_dim,), kind, g)


def dcgan_iterations(num_images: int, batch: int, epochs: int) -> int:
    """The authors' DCGAN length: ``epochs`` x ``num_images // batch`` iterations
    (layumi/DCGAN-tensorflow ``model.py`` ``train``: ``batch_idxs = len(data) // batch_size``
    per epoch, the last partial batch dropped).

    Raises:
        ValueError: fewer images than one batch.
    """
    if num_images < batch:
        raise ValueError(f"{num_images} training images cannot fill one DCGAN batch of {batch}")
    return int(epochs) * (int(num_images) // int(batch))


def dcgan_config(cfg) -> dict:
    """The merges of the DCGAN stage's derived config: :func:`gan_stage_config`, its engine
    and meta-architecture, ``INPUT.FLIP_PROB`` = ``LSRO.GAN_FLIP_PROB``, ``DATALOADER.SHUFFLE`` =
    ``LSRO.GAN_SHUFFLE`` and, with
    ``LSRO.GAN_EPOCHS`` > 0, ``SOLVER.MAX_ITER`` from the training set's size (logged)."""
    opts = {
        **gan_stage_config(cfg),
        "ENGINE.NAME": "LSRODCGANEngine",
        "MODEL.META_ARCHITECTURE": "DCGAN",
        "INPUT.FLIP_PROB": cfg.LSRO.GAN_FLIP_PROB,
        "DATALOADER.SHUFFLE": bool(cfg.LSRO.GAN_SHUFFLE),
    }
    epochs = cfg.LSRO.GAN_EPOCHS
    if epochs > 0:
        from ...data import load_train_set

        n = len(load_train_set(cfg)[0])
        iters = dcgan_iterations(n, cfg.GAN.IMS_PER_BATCH, epochs)
        logger.info(
            "LSRO DCGAN: %d epochs of %d training images at batch %d = %d iterations",
            epochs, n, cfg.GAN.IMS_PER_BATCH, iters,
        )  # fmt: skip
        opts.update({"SOLVER.MAX_ITER": iters, "GAN.DECAY_START": iters})
    return opts


def generation_plan(n: int) -> list[dict]:
    """``n`` entries ``{file, source: "", source_pid: -1, source_camid: "", target: "dcgan"}``:
    unconditional images have no source and no identity (files ``0000_c1s0_<serial>_00.jpg``;
    pid 0 is Market's "no identity")."""
    return [
        {
            "file": generated_file_name(0, 1, i, "00"),
            "source": "",
            "source_pid": -1,
            "source_camid": "",
            "target": "dcgan",
        }
        for i in range(n)
    ]


def generate(ctx: StageContext) -> None:
    """Write ``LSRO.NUM_GENERATED`` DCGAN images (``[0, 1]``, the DCGAN's size) with their
    provenance into :func:`generated_root`; resumable (``write_generated_set``)."""
    cfg = ctx.cfg
    model, _, weights = load_translator(dcgan_dir(cfg), ctx.device)
    device = next(model.parameters()).device
    z_dim, seed, kind = model.gen.z_dim, cfg.SEED, model.gen.noise

    def translate(batch: list[dict]) -> torch.Tensor:
        serials = [int(os.path.basename(e["file"]).split("_")[2]) for e in batch]
        z = torch.stack([noise_for(s, seed, z_dim, kind) for s in serials]).to(device)
        return (model.gen(z) + 1) / 2

    write_generated_set(
        generated_root(cfg),
        generation_plan(cfg.LSRO.NUM_GENERATED),
        translate,
        GENERATOR_NAME,
        weights,
        cfg.GENERATED.BATCH_SIZE,
    )


def comparison_stage(mode: str) -> Stage:
    """The re-ID run with ``LOSS.LABEL.GENERATED mode`` in ``OUTPUT_DIR/reid_<mode>``."""
    return training_stage(
        f"reid_{mode}",
        f"re-ID on real + generated images, {COMPARISON_ROWS[mode]}",
        lambda cfg: comparison_dir(cfg, mode),
        # the main run's generated set (the run's own OUTPUT_DIR differs)
        lambda cfg: {"LOSS.LABEL.GENERATED": mode, "GENERATED.ROOT": generated_root(cfg)},
    )


def lsro_baseline_stage(cfg) -> Stage:
    """The real-only baseline (:func:`baseline_stage`); with ``LSRO.BASELINE_BATCH`` > 0 it
    trains that many real images per step for ``LSRO.BASELINE_MAX_ITER`` iterations with
    decays at ``LSRO.BASELINE_STEPS`` (the authors' baseline, layumi/Person-reID_GAN
    ``train_id_net_res_market_new.m``: 64 real images, 50 epochs, where the LSRO run mixes
    generated images into its batches)."""
    b = cfg.LSRO
    if b.BASELINE_BATCH <= 0:
        return baseline_stage()
    return training_stage(
        BASELINE_SUBDIR,
        f"re-ID baseline on the real images only ({b.BASELINE_BATCH} per step)",
        lambda c: os.path.join(c.OUTPUT_DIR, BASELINE_SUBDIR),
        lambda c: {
            "GENERATED.ENABLED": False,
            "SOLVER.IMS_PER_BATCH": c.LSRO.BASELINE_BATCH,
            "SOLVER.MAX_ITER": c.LSRO.BASELINE_MAX_ITER or c.SOLVER.MAX_ITER,
            "SOLVER.STEPS": tuple(c.LSRO.BASELINE_STEPS or c.SOLVER.STEPS),
        },
    )


def lsro_stages(cfg) -> list[Stage]:
    """``dcgan`` (the DCGAN's run), ``generate``, then the comparison runs of
    ``LSRO.COMPARE`` (``baseline``, ``reid_argmax``, ``reid_lsr``, ...)."""
    stages = [
        training_stage(
            "dcgan",
            "DCGAN on the training images (no labels)",
            dcgan_dir,
            dcgan_config,
            GAN_STAGE_IGNORES,
        ),
        generation_stage(generate, f"{cfg.LSRO.NUM_GENERATED} DCGAN images"),
    ]
    for mode in cfg.LSRO.COMPARE:
        if mode == "baseline":
            stages.append(lsro_baseline_stage(cfg))
        elif mode != cfg.LOSS.LABEL.GENERATED:
            stages.append(comparison_stage(mode))
    return stages
