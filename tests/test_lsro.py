"""LSRO: the loss against a hand computation (and its pseudo-label variants), the generation
plan, the configs, and every stage end to end on real CUHK03 crops (a tiny subset) through
``tools/train_net.py``: DCGAN, generation with provenance, baseline, + argmax, then LSRO."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from conftest import REPO, cli_opts, make_tiny_market

import dgnet_plugin  # noqa: F401
from dgnet_plugin.config import ConfigError, load_cfg_file
from dgnet_plugin.methods.lsro.engine import LSROEngine
from dgnet_plugin.methods.lsro.stages import generation_plan, noise_for
from dgnet_plugin.offline_augmentation.label_assignment import label_assignment_loss


def _engine_with(mode: str, epsilon: float = 0.1) -> LSROEngine:
    """An LSROEngine holding only a config (enough for its loss)."""
    cfg = load_cfg_file(
        str(REPO / "configs" / "lsro_cuhk03_cpu_demo.yml"),
        ["LOSS.LABEL.GENERATED", mode, "LOSS.LABEL.EPSILON", str(epsilon)],
    )
    engine = object.__new__(LSROEngine)
    engine.cfg = cfg
    return engine


LOGITS = torch.tensor([[2.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 0.0]])
BATCH = {"pid": torch.tensor([0, -1, 2]), "generated": torch.tensor([False, True, False])}


def _log_softmax(row):
    z = math.log(sum(math.exp(v) for v in row))
    return [v - z for v in row]


def test_lsro_loss_against_a_hand_computation():
    """l = -(1 - Z) log p(y) - (Z / K) sum_k log p(k): Z = 0 real, Z = 1 generated (Eq. 4)."""
    lp = [_log_softmax(r) for r in LOGITS.tolist()]
    hand = (-lp[0][0] - sum(lp[1]) / 4 - lp[2][2]) / 3
    logits = LOGITS.clone().requires_grad_(True)
    loss = _engine_with("lsro").label_loss(logits, BATCH)
    assert loss.item() == pytest.approx(hand, rel=1e-6)
    # the gradient of a generated image pulls every class to 1/K: (p - 1/K) / N
    loss.backward()
    p = torch.softmax(LOGITS[1], 0)
    assert torch.allclose(logits.grad[1], (p - 0.25) / 3, atol=1e-6)
    # the label of the generated image (-1) is never read
    other = {"pid": torch.tensor([0, 3, 2]), "generated": BATCH["generated"]}
    assert _engine_with("lsro").label_loss(LOGITS, other).item() == pytest.approx(hand, rel=1e-6)


def test_pseudo_label_variants_against_a_hand_computation():
    lp = [_log_softmax(r) for r in LOGITS.tolist()]
    real = -lp[0][0] - lp[2][2]
    # argmax: the generated image's own prediction (class 3) as a hard label, its term weighted
    # 0.1 (layumi/Person-reID_GAN matlab/+dagnn/Pseudo_Loss.m: instanceWeights(gan) = 0.1,
    # LSRO.PSEUDO_WEIGHT); weight 1 = the plain pseudo-label loss
    argmax = (real - 0.1 * lp[1][3]) / 3
    assert _engine_with("argmax").label_loss(LOGITS, BATCH).item() == pytest.approx(
        argmax, rel=1e-6
    )
    engine = _engine_with("argmax")
    engine.cfg.defrost()
    engine.cfg.LSRO.PSEUDO_WEIGHT = 1.0
    assert engine.label_loss(LOGITS, BATCH).item() == pytest.approx((real - lp[1][3]) / 3, rel=1e-6)
    # lsr: q(3) = 1 - eps + eps / K, eps / K elsewhere, around that pseudo-label
    eps = 0.2
    q = [eps / 4] * 4
    q[3] += 1 - eps
    lsr = (real - sum(qk * lk for qk, lk in zip(q, lp[1]))) / 3
    got = _engine_with("lsr", eps).label_loss(LOGITS, BATCH)
    assert got.item() == pytest.approx(lsr, rel=1e-6)
    # the shared loss gives the same with the pseudo-label written in
    pseudo = torch.tensor([0, 3, 2])
    ref = label_assignment_loss(LOGITS, pseudo, BATCH["generated"], "hard", "lsr", eps)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


def test_generation_plan_and_noise_are_reproducible():
    plan = generation_plan(3)
    assert [e["file"] for e in plan] == [
        "bounding_box_train/0000_c1s0_000000_00.jpg",
        "bounding_box_train/0000_c1s0_000001_00.jpg",
        "bounding_box_train/0000_c1s0_000002_00.jpg",
    ]
    assert all(e["source_pid"] == -1 and e["source"] == "" for e in plan)
    assert torch.equal(noise_for(5, 7, 100), noise_for(5, 7, 100))
    assert not torch.equal(noise_for(5, 7, 100), noise_for(6, 7, 100))


def test_lsro_configs_build_and_bad_values_are_refused(tmp_path):
    from dgnet_plugin.config.validate import validate_config
    from dgnet_plugin.methods.lsro import RULES

    for name in ("lsro_r50", "lsro_cuhk03_cpu_demo"):
        cfg = load_cfg_file(str(REPO / "configs" / f"{name}.yml"))
        assert cfg.ENGINE.NAME == "LSROEngine" and cfg.MODEL.GEN.NAME == "DCGANGenerator"
        assert cfg.LOSS.LABEL.GENERATED == "lsro" and cfg.LOSS.GAN_MODE == "vanilla"
        validate_config(cfg, RULES)
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"), ["LOSS.LABEL.GENERATED", "teacher"])
    with pytest.raises(ConfigError, match="LOSS.LABEL.GENERATED"):
        validate_config(cfg, RULES)
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"), ["LSRO.COMPARE", "('hard',)"])
    with pytest.raises(ConfigError, match="LSRO.COMPARE"):
        validate_config(cfg, RULES)


TINY = [
    "MODEL.GEN.DIM", "8", "MODEL.DIS.DIM", "8",
    "GAN.SIZE", "(32, 16)", "GAN.MAX_ITER", "3", "GAN.DECAY_START", "3",
    "GAN.IMS_PER_BATCH", "4", "GAN.CHECKPOINT_PERIOD", "0", "GAN.VIS_PERIOD", "0",
    "LSRO.NUM_GENERATED", "12", "LSRO.COMPARE", "('baseline', 'argmax')",
    "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "SOLVER.CHECKPOINT_PERIOD", "0",
    "SOLVER.IMS_PER_BATCH", "8", "GENERATED.PER_BATCH", "4", "GENERATED.BATCH_SIZE", "5",
    "VIS.NUM_IMAGES", "2", "GENERATED.MIXING", "pool",
]  # fmt: skip


@pytest.mark.e2e
def test_lsro_all_stages_on_real_crops(tmp_path):
    from train_net import cli

    root = make_tiny_market(tmp_path / "data", n_train_ids=6, n_test_ids=4)
    out = tmp_path / "out"
    config = str(REPO / "configs" / "lsro_cuhk03_cpu_demo.yml")
    assert cli(["--config-file", config, *cli_opts(root, out, 32), *TINY]) == 0

    # the DCGAN's run and its sample grid
    assert (out / "dcgan" / "model_final.pth").is_file()
    assert (out / "dcgan" / "images" / "samples_00000003.jpg").is_file()
    # 12 unlabelled images with their provenance
    with open(out / "generated" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and (out / "generated" / "COMPLETE.json").is_file()
    assert {r["source_pid"] for r in rows} == {"-1"} and {r["target"] for r in rows} == {"dcgan"}
    assert rows[0]["generator"] == "lsro dcgan"
    assert rows[0]["checkpoint"].endswith("dcgan/model_final.pth")
    from PIL import Image

    assert Image.open(out / "generated" / rows[0]["file"]).size == (16, 32)  # (W, H) of GAN.SIZE
    # the comparison runs trained on the same generated set, and the final table
    assert (out / "baseline" / "model_final.pth").is_file()
    assert "generated labels: argmax" in (out / "reid_argmax" / "log.txt").read_text()
    log = (out / "log.txt").read_text()
    assert " real + 12 generated images (8 per step from one shuffled pool" in log
    table = log[log.rindex("Evaluation at iteration 2") :]
    for row in (
        "+ generated, LSRO (uniform label)",
        "baseline (real images only)",
        "+ generated, argmax pseudo-labels",
    ):
        assert row in table, row
    records = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    assert any("market_layout/Rank-1" in r for r in records)
