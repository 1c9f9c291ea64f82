"""CamStyle's stages: one CycleGAN per camera pair, every training image transferred to every
other camera, the real-only baseline, then :class:`~.engine.CamStyleEngine`."""

from __future__ import annotations

import itertools
import os

from ...data import load_train_set
from ...data.build import parse_dataset_entry
from ...data.datasets import parse_market_name
from ...data.generated import generated_file_name, link_test_sets, write_generated_set
from ...engine.stages import StageContext
from ...offline_augmentation.config import GAN_STAGE_IGNORES, gan_stage_config
from ...offline_augmentation.cyclegan import Translators
from ...offline_augmentation.engine import (
    baseline_stage,
    generated_root,
    generation_stage,
    training_stage,
)


def cameras(cfg) -> list[int]:
    """``CAMSTYLE.CAMERAS``, or every camera (1-based) of the training set."""
    if cfg.CAMSTYLE.CAMERAS:
        return sorted(int(c) for c in cfg.CAMSTYLE.CAMERAS)
    items, _ = load_train_set(cfg)
    return sorted({it[2] + 1 for it in items})


def camera_sizes(cfg, i: int, j: int) -> tuple[int, int]:
    """Training-image counts of cameras ``i`` and ``j`` (1-based): the two domains of the
    pair's CycleGAN, whose larger count is an epoch (``GAN.EPOCHS``)."""
    items, _ = load_train_set(cfg)
    return tuple(sum(1 for it in items if it[2] == c - 1) for c in (i, j))


def pair_dir(cfg, i: int, j: int) -> str:
    return os.path.join(cfg.OUTPUT_DIR, f"{cfg.GAN.OUTPUT_SUBDIR}_c{i}_c{j}")


def generation_plan(cfg) -> list[dict]:
    """Every training image of camera ``c`` to every other camera ``t``: written as
    ``{pid}_c{t}s0_{serial}_{c}to{t}.jpg`` (``serial``: its index in the training list) by
    the pair's CycleGAN (``gen_ab`` when ``c < t``), with the source as provenance."""
    items, _ = load_train_set(cfg)
    cams = cameras(cfg)
    out = []
    for serial, (path, *_) in enumerate(items):
        pid, c = parse_market_name(path)
        if c not in cams:
            continue
        for t in cams:
            if t == c:
                continue
            i, j = min(c, t), max(c, t)
            run = pair_dir(cfg, i, j)
            direction = "ab" if c == i else "ba"
            out.append(
                {
                    "file": generated_file_name(pid, t, serial, f"{c}to{t}"),
                    "source": path,
                    "source_pid": pid,
                    "source_camid": c,
                    "target": f"c{t}",
                    "translator": run,
                    "direction": direction,
                    "generator": f"CycleGAN c{i}<->c{j} {direction} (c{c}->c{t})",
                    "checkpoint": os.path.join(run, "model_final.pth"),
                }
            )
    return out


def generate(ctx: StageContext) -> None:
    cfg = ctx.cfg
    root = generated_root(cfg)
    write_generated_set(
        root,
        generation_plan(cfg),
        Translators(ctx.device),
        generator="CycleGAN",
        batch_size=cfg.GENERATED.BATCH_SIZE,
    )
    for entry in cfg.DATASETS.NAMES[:1]:  # a Market layout of its own (market_layout@root)
        name, data_root = parse_dataset_entry(entry, cfg.DATASETS.ROOT)
        if name == "market_layout":
            link_test_sets(data_root, root)


def camstyle_stages(cfg) -> list:
    """``gan_c{i}_c{j}`` for every camera pair i < j, ``generate``, ``baseline``."""
    stages = []
    for i, j in itertools.combinations(cameras(cfg), 2):
        stages.append(
            training_stage(
                f"{cfg.GAN.OUTPUT_SUBDIR}_c{i}_c{j}",
                f"CycleGAN between cameras {i} and {j}",
                lambda c, i=i, j=j: pair_dir(c, i, j),
                lambda c, i=i, j=j: {
                    **gan_stage_config(c, camera_sizes(c, i, j)),
                    "ENGINE.NAME": "CamStyleCycleGANEngine",
                    "MODEL.META_ARCHITECTURE": "CycleGAN",
                    "CAMSTYLE.PAIR": (i, j),
                },
                GAN_STAGE_IGNORES,
            )
        )
    stages.append(generation_stage(generate, "every training image to every other camera"))
    stages.append(baseline_stage())
    return stages
