"""CamStyle end to end on real CUHK03 crops (a tiny subset): the camera-pair CycleGAN stage
(interrupted, then resumed), the generation stage, the baseline and the CamStyle re-ID run,
through ``tools/train_net.py``."""

from __future__ import annotations

import json

import pytest
from conftest import CUHK03_MARKET, MOBILENET_WEIGHTS, REPO, cli_opts, make_tiny_market

import dgnet_plugin  # noqa: F401
from dgnet_plugin.config import load_cfg_file

TINY = [
    "MODEL.GEN.DIM", "8", "MODEL.GEN.N_BLOCKS", "1", "MODEL.DIS.DIM", "8",
    "GAN.MAX_ITER", "4", "GAN.DECAY_START", "2", "GAN.IMS_PER_BATCH", "2",
    "GAN.CHECKPOINT_PERIOD", "2", "GAN.VIS_PERIOD", "0",
    "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "SOLVER.CHECKPOINT_PERIOD", "2",
    "SOLVER.IMS_PER_BATCH", "8", "GENERATED.PER_BATCH", "4", "GENERATED.BATCH_SIZE", "16",
    "VIS.NUM_IMAGES", "2",
]  # fmt: skip


class _Killed(Exception):
    pass


def test_camstyle_all_stages_with_an_interrupted_translator(tmp_path, monkeypatch):
    from train_net import cli

    from dgnet_plugin.offline_augmentation.cyclegan import CycleGANTrainer

    root = make_tiny_market(tmp_path / "data", n_train_ids=6, n_test_ids=4)
    out = tmp_path / "out"
    config = str(REPO / "configs" / "camstyle_cpu_demo.yml")
    argv = ["--config-file", config, *cli_opts(root, out, 32), *TINY]

    step = CycleGANTrainer.run_step

    def dies_at_3(self, iteration):
        if iteration == 3:
            raise _Killed
        return step(self, iteration)

    monkeypatch.setattr(CycleGANTrainer, "run_step", dies_at_3)
    with pytest.raises(_Killed):
        cli(argv)
    gan = out / "gan_c1_c2"
    assert (gan / "model_0000002.pth").is_file() and not (gan / "model_final.pth").exists()
    monkeypatch.setattr(CycleGANTrainer, "run_step", step)

    assert cli(argv) == 0
    log = (gan / "log.txt").read_text()
    assert "Resumed from" in log and "at iteration 2" in log
    assert (gan / "model_final.pth").is_file()
    assert (gan / "images" / "translation_00000004.jpg").is_file()
    # every training image transferred to the other camera, with its provenance
    gen = out / "generated"
    rows = (gen / "manifest.csv").read_text().splitlines()[1:]
    n_train = len(list((root / "bounding_box_train").iterdir()))
    assert len(rows) == n_train and (gen / "COMPLETE.json").is_file()
    assert "1to2" in rows[0] or "2to1" in rows[0]
    assert "model_final.pth" in rows[0] and "CycleGAN c1<->c2" in rows[0]
    # the baseline and the method, evaluated side by side
    assert (out / "baseline" / "model_final.pth").is_file()
    main_log = (out / "log.txt").read_text()
    assert "baseline (real images only)" in main_log
    assert "CamStyle (IDEBaseline, real + generated)" in main_log
    assert "Training on" in main_log and f"{n_train} generated" in main_log
    records = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    assert any("market_layout/Rank-1" in r for r in records)

    # a finished pipeline: every stage is reused; one stage can be rerun alone
    assert cli(["--stage", "generate", *argv]) == 0
    log = (out / "log.txt").read_text()
    assert "stage 2/4 'generate'" in log


def test_a_bad_label_mode_is_refused_before_any_work(tmp_path, capsys):
    from train_net import cli

    config = str(REPO / "configs" / "camstyle_cpu_demo.yml")
    opts = ["OUTPUT_DIR", str(tmp_path / "out"), "LOSS.LABEL.GENERATED", "soft"]
    opts += [
        "DATASETS.ROOT",
        str(CUHK03_MARKET),
        "MODEL.BACKBONE.PRETRAIN_PATH",
        str(MOBILENET_WEIGHTS),
    ]
    assert cli(["--config-file", config, *opts]) == 2
    assert "LOSS.LABEL.GENERATED = 'soft' is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "out" / "gan_c1_c2").exists()


def test_camstyle_configs_build():
    cfg = load_cfg_file(str(REPO / "configs" / "camstyle_r50.yml"))
    assert cfg.DATASETS.NAMES == ("market1501",) and cfg.GENERATED.PER_BATCH == 46
    assert cfg.LOSS.LABEL.GENERATED == "lsr" and cfg.LOSS.LABEL.EPSILON == 0.1
    assert cfg.MODEL.GEN.N_BLOCKS == 9 and cfg.MODEL.DIS.N_LAYERS == 3
    assert cfg.SOLVER.GEN.LR == 2e-4 and tuple(cfg.SOLVER.GEN.BETAS) == (0.5, 0.999)
    from dgnet_plugin.modeling import build_model
    from dgnet_plugin.offline_augmentation.cyclegan import CycleGANTrainer  # noqa: F401

    cfg.defrost()
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.META_ARCHITECTURE = "CycleGAN"
    m = build_model(cfg, 0)
    assert type(m.gen_ab).__name__ == "ResnetGenerator"
    assert type(m.dis_a).__name__ == "PatchGANDiscriminator"
