"""PN-GAN's re-posing aids and checks: the foreground-weighted L1 against a hand computation
(and no gradient from background pixels of weight 0), the self-pair curriculum, the person
masks of the training pairs (real CUHK03 masks), and the held-out pose-transfer figures."""

from __future__ import annotations

import pytest
import torch
from conftest import SHARED_DATA, make_tiny_market

import dgnet_plugin  # noqa: F401
from dgnet_plugin.data.pose import build_keypoint_provider
from dgnet_plugin.losses import foreground_weighted_l1_loss, recon_l1_loss
from dgnet_plugin.methods.pngan.gan import self_pair_fraction, swap_self_pairs
from dgnet_plugin.methods.pngan.scores import heldout_pairs, pose_transfer_scores
from dgnet_plugin.offline_augmentation.masks import FolderMaskProvider

POSES_CSV = str(SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_poses.csv")
MASKS = str(SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_masks")


def test_foreground_weighted_l1_by_hand():
    # one image, 2 channels, 1 x 2 pixels: errors |p - t| = (1, 3) in channel 0, (2, 4) in 1
    pred = torch.tensor([[[[1.0, 3.0]], [[2.0, 4.0]]]])
    target = torch.zeros_like(pred)
    mask = torch.tensor([[[[1.0, 0.0]]]])  # person on the left pixel
    # b = 0.5: w = (1, 0.5); L = (1*1 + 0.5*3 + 1*2 + 0.5*4) / (2 * 1.5) = 6.5 / 3
    assert foreground_weighted_l1_loss(pred, target, mask, 0.5).item() == pytest.approx(6.5 / 3)
    # b = 0: the person alone, (1 + 2) / 2
    assert foreground_weighted_l1_loss(pred, target, mask, 0.0).item() == pytest.approx(1.5)
    # b = 1: the plain L1 of the paper, whatever the mask
    x, y = torch.randn(3, 3, 8, 4), torch.randn(3, 3, 8, 4)
    m = torch.rand(3, 1, 8, 4)
    assert torch.allclose(foreground_weighted_l1_loss(x, y, m, 1.0), recon_l1_loss(x, y))


def test_foreground_weighted_l1_sends_no_gradient_from_weight_zero_background():
    pred = torch.randn(2, 3, 8, 4, requires_grad=True)
    target = torch.randn(2, 3, 8, 4)
    mask = torch.zeros(2, 1, 8, 4)
    mask[:, :, 2:6, 1:3] = 1.0
    foreground_weighted_l1_loss(pred, target, mask, 0.0).backward()
    bg = (mask == 0).expand_as(pred)
    assert pred.grad[bg].abs().max() == 0
    assert pred.grad[~bg].abs().min() > 0
    # a soft mask value scales the gradient: d/dp of w|p - t| / (C sum w)
    pred.grad = None
    foreground_weighted_l1_loss(pred, target, mask, 0.2).backward()
    w_sum = 3 * (0.2 + 0.8 * mask).sum()
    expected_bg = 0.2 / w_sum
    assert torch.allclose(pred.grad[bg].abs(), expected_bg.expand(int(bg.sum())))


def test_foreground_weighted_l1_refuses_bad_inputs():
    x = torch.zeros(2, 3, 8, 4)
    with pytest.raises(ValueError, match="shapes differ"):
        foreground_weighted_l1_loss(x, torch.zeros(2, 3, 8, 5), torch.zeros(2, 1, 8, 4), 0.5)
    with pytest.raises(ValueError, match="must be \\(N, 1, H, W\\)"):
        foreground_weighted_l1_loss(x, x, torch.zeros(2, 3, 8, 4), 0.5)
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        foreground_weighted_l1_loss(x, x, torch.zeros(2, 1, 8, 4), 1.5)


def test_self_pair_curriculum_and_masks_swap_with_the_target():
    assert self_pair_fraction(0.5, -1.0, 300, 400) == 0.5  # constant
    assert self_pair_fraction(0.5, 0.1, 0, 401) == pytest.approx(0.5)
    assert self_pair_fraction(0.5, 0.1, 200, 401) == pytest.approx(0.3)
    assert self_pair_fraction(0.5, 0.1, 400, 401) == pytest.approx(0.1)
    batch = {
        "img": torch.full((4, 3, 2, 2), 1.0),
        "target": torch.full((4, 3, 2, 2), 2.0),
        "img_pose": torch.full((4, 36, 2, 2), 3.0),
        "pose": torch.full((4, 36, 2, 2), 4.0),
        "img_mask": torch.full((4, 1, 2, 2), 0.25),
        "target_mask": torch.full((4, 1, 2, 2), 0.75),
    }
    out = swap_self_pairs(batch, torch.tensor([True, False, True, False]))
    assert out["target"][:, 0, 0, 0].tolist() == [1.0, 2.0, 1.0, 2.0]
    assert out["pose"][:, 0, 0, 0].tolist() == [3.0, 4.0, 3.0, 4.0]
    assert out["target_mask"][:, 0, 0, 0].tolist() == [0.25, 0.75, 0.25, 0.75]
    assert torch.equal(batch["target"], torch.full((4, 3, 2, 2), 2.0))  # input untouched


def test_pose_transfer_scores_by_hand():
    src = torch.zeros(2, 3, 4, 2)
    tgt = torch.ones(2, 3, 4, 2) * 0.5
    tpose = torch.zeros(2, 5, 4, 2)
    mean = torch.full((3, 4, 2), 0.25)
    canon = torch.stack([torch.full((5, 4, 2), float(k)) for k in range(3)])  # 0, 1, 2
    mask = torch.zeros(2, 1, 4, 2)
    mask[:, :, :2] = 1.0

    def copy(x, pose):  # ignores the pose
        return x

    s = pose_transfer_scores(copy, src, tgt, tpose, mean, canon, mask)
    assert s["transfer_l1"] == pytest.approx(0.5) == s["source_l1"]
    assert s["mean_l1"] == pytest.approx(0.25) == s["mean_l1_fg"]
    assert s["pose_sensitivity"] == 0.0
    assert s["source_sensitivity"] == 0.0 == s["source_spread"]  # the two sources are equal

    def shift(x, pose):  # adds a tenth of the pose's first channel
        return x + 0.1 * pose[:, :1].expand_as(x)

    s = pose_transfer_scores(shift, src, tgt, tpose, mean, canon)
    # views 0, 0.1, 0.2: pairwise L1 0.1, 0.2, 0.1 -> mean 0.4 / 3
    assert s["pose_sensitivity"] == pytest.approx(0.4 / 3)
    assert "transfer_l1_fg" not in s

    def template(x, pose):  # draws the pose alone, whoever the source
        return pose[:, :3] * 0.5

    two = torch.stack([torch.zeros(3, 4, 2), torch.full((3, 4, 2), 0.3)])
    s = pose_transfer_scores(template, two, tgt, tpose, mean, canon)
    assert s["source_sensitivity"] == 0.0 and s["source_spread"] == pytest.approx(0.3)
    s = pose_transfer_scores(copy, two, tgt, tpose, mean, canon)
    assert s["source_sensitivity"] == pytest.approx(0.3) and s["pose_sensitivity"] == 0.0


def test_heldout_pairs_and_pair_masks_on_the_real_data(tmp_path):
    from conftest import REPO

    from dgnet_plugin.config import load_cfg_file
    from dgnet_plugin.data.build import open_dataset
    from dgnet_plugin.data.transforms import build_transforms
    from dgnet_plugin.methods.pngan.data import PosePairDataset

    root = make_tiny_market(tmp_path / "m", n_train_ids=4, n_test_ids=6)
    provider = build_keypoint_provider(POSES_CSV)
    test = open_dataset("market_layout", str(root))
    pairs = heldout_pairs(test.query, provider, 4)
    assert 1 <= len(pairs) <= 4
    for a, b in pairs:  # one identity, two cameras, both with a pose
        assert a.split("/")[-1][:4] == b.split("/")[-1][:4]
        assert "_c1" in a and "_c2" in b
        assert provider(a) is not None and provider(b) is not None
    assert len({a.split("/")[-1][:4] for a, _ in pairs}) == len(pairs)

    cfg = load_cfg_file(
        str(REPO / "configs" / "pngan_cuhk03_cpu_demo.yml"), ["POSE.SOURCE", POSES_CSV]
    )
    items = list(open_dataset("market_layout", str(root)).train)
    ds = PosePairDataset(
        items, provider, build_transforms(cfg, False), (64, 32), cfg.POSE,
        source_pose=True, masks=FolderMaskProvider(MASKS),
    )  # fmt: skip
    j = next(k for k in ds.by_pid[ds.items[0][1]] if k != 0)
    s = ds[(0, j)]
    assert s["target_mask"].shape == (1, 64, 32) == s["img_mask"].shape
    assert 0 <= s["target_mask"].min() and s["target_mask"].max() <= 1
    # the person is in the middle columns, the corridor at the sides
    m = s["target_mask"][0]
    assert m[:, 12:20].mean() > m[:, :4].mean() + 0.2
    assert not torch.equal(s["target_mask"], s["img_mask"])


def test_repose_keys_are_validated():
    from conftest import REPO

    from dgnet_plugin.config import ConfigError, load_cfg_file
    from dgnet_plugin.config.validate import validate_config
    from dgnet_plugin.methods.pngan import RULES

    demo = str(REPO / "configs" / "pngan_cuhk03_cpu_demo.yml")
    with pytest.raises(ConfigError, match="PNGAN.BACKGROUND_WEIGHT"):
        validate_config(load_cfg_file(demo, ["PNGAN.BACKGROUND_WEIGHT", "-0.5"]), RULES)
    with pytest.raises(ConfigError, match="MASKS.FOLDER"):
        cfg = load_cfg_file(demo, ["PNGAN.BACKGROUND_WEIGHT", "0.1", "MASKS.FOLDER", ""])
        validate_config(cfg, RULES)
    with pytest.raises(ConfigError, match="PNGAN.SELF_PAIRS_FINAL"):
        validate_config(load_cfg_file(demo, ["PNGAN.SELF_PAIRS_FINAL", "2.0"]), RULES)
    # the paper's values: plain L1, a constant self-pair fraction
    paper = load_cfg_file(str(REPO / "configs" / "pngan_r50.yml"))
    assert paper.PNGAN.BACKGROUND_WEIGHT == 1.0 and paper.PNGAN.SELF_PAIRS_FINAL < 0
    validate_config(paper, RULES)
