"""PN-GAN: the pose-conditioned generator's shapes and gradients, the training pairs on the
real keypoints, the test-time fused features, the configs, and every stage end to end on
real CUHK03 crops (a tiny subset) through ``tools/train_net.py``."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, SHARED_DATA, cli_opts, make_tiny_market
from torch import nn

import dgnet_plugin  # noqa: F401
from dgnet_plugin.config import ConfigError, load_cfg_file
from dgnet_plugin.data.pose import POSE_CHANNELS, build_keypoint_provider
from dgnet_plugin.data.transforms import build_transforms
from dgnet_plugin.evaluation import fuse_features
from dgnet_plugin.methods.pngan.data import PosePairDataset
from dgnet_plugin.methods.pngan.fusion import (
    PoseViewsReID,
    evaluate_pose_fusion,
    renormalize,
    split_views,
    view_features,
)
from dgnet_plugin.methods.pngan.gan import PoseGAN, self_pairs

POSES_CSV = str(SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_poses.csv")
DEMO = str(REPO / "configs" / "pngan_cuhk03_cpu_demo.yml")


def _demo_cfg(*opts):
    return load_cfg_file(DEMO, ["POSE.SOURCE", POSES_CSV, *opts])


def test_pose_conditioned_generator_shapes_and_gradients():
    cfg = _demo_cfg("MODEL.GEN.DIM", "8", "MODEL.DIS.DIM", "8", "INPUT.SIZE_TRAIN", "(64, 32)")
    gan = PoseGAN.from_config(cfg)
    # the paper's generator: 7x7 conv, 2 stride-2 convs, 9 residual blocks, 2 up, 7x7 + tanh
    assert gan.gen.net[0].conv.in_channels == 3 + POSE_CHANNELS == 39
    assert len(gan.gen.net[3].blocks) == 9
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    pose = torch.rand(2, POSE_CHANNELS, 64, 32).requires_grad_(True)
    y = gan(x, pose)
    assert y.shape == (2, 3, 64, 32) and y.abs().max() <= 1
    outs = gan.dis(y)
    assert isinstance(outs, list) and outs[0].shape[:2] == (2, 1)
    # the output depends on the pose map (the condition reaches G's output)
    y.sum().backward()
    assert pose.grad is not None and pose.grad.abs().sum() > 0
    assert all(p.grad is None for p in gan.dis.parameters())


def test_pose_pairs_on_the_real_keypoints(tiny_market):
    from dgnet_plugin.data import load_train_set

    cfg = _demo_cfg("DATASETS.ROOT", str(tiny_market))
    items, _ = load_train_set(cfg)
    gcfg = _demo_cfg("INPUT.PIXEL_MEAN", "(0.5, 0.5, 0.5)", "INPUT.PIXEL_STD", "(0.5, 0.5, 0.5)")
    ds = PosePairDataset(
        items, build_keypoint_provider(POSES_CSV), build_transforms(gcfg, False), (64, 32), cfg.POSE
    )
    assert 0 < len(ds) <= len(items)  # images without a pose are left out
    i = 0
    j = next(k for k in ds.by_pid[ds.items[0][1]] if k != 0)
    s = ds[(i, j)]
    assert s["img"].shape == s["target"].shape == (3, 64, 32)
    assert s["pose"].shape == (POSE_CHANNELS, 64, 32)
    assert -1 <= s["img"].min() and s["img"].max() <= 1  # [-1, 1]
    # the pose map is the target's: its nose heat map peaks where the target's nose is
    kp, (w, h) = ds.keypoints[j]
    r, c = divmod(int(s["pose"][0].argmax()), 32)
    assert abs(c + 0.5 - kp[0, 0] * 32 / w) <= 1 and abs(r + 0.5 - kp[0, 1] * 64 / h) <= 1
    assert s["pid"] == ds.items[j][1]


def test_self_pairs_put_the_source_in_its_own_pose_as_the_target(tiny_market):
    from dgnet_plugin.data import load_train_set

    cfg = _demo_cfg("DATASETS.ROOT", str(tiny_market))
    items, _ = load_train_set(cfg)
    ds = PosePairDataset(
        items, build_keypoint_provider(POSES_CSV), build_transforms(cfg, False), (64, 32),
        cfg.POSE, source_pose=True,
    )  # fmt: skip
    j = next(k for k in ds.by_pid[ds.items[0][1]] if k != 0)
    s = ds[(0, j)]
    assert torch.equal(s["img_pose"], ds.pose_map(0)) and not torch.equal(s["img_pose"], s["pose"])
    plain = PosePairDataset(
        items, build_keypoint_provider(POSES_CSV), build_transforms(cfg, False), (64, 32), cfg.POSE
    )
    assert "img_pose" not in plain[(0, j)]  # only rendered when asked for

    n = 64
    batch = {
        "img": torch.full((n, 3, 4, 2), 1.0),
        "target": torch.full((n, 3, 4, 2), 2.0),
        "img_pose": torch.full((n, 36, 4, 2), 3.0),
        "pose": torch.full((n, 36, 4, 2), 4.0),
    }
    out = self_pairs(batch, 0.0, 0, 5)  # the paper: the batch as drawn
    t, p = out["target"], out["pose"]
    assert t is batch["target"] and p is batch["pose"]
    out = self_pairs(batch, 1.0, 0, 5)
    t, p = out["target"], out["pose"]
    assert torch.equal(t, batch["img"]) and torch.equal(p, batch["img_pose"])
    out = self_pairs(batch, 0.25, 0, 5)
    t, p = out["target"], out["pose"]
    own = t[:, 0, 0, 0] == 1.0
    assert 4 <= int(own.sum()) <= 28  # about a quarter of 64
    assert torch.equal(own, p[:, 0, 0, 0] == 3.0)  # the target and its pose change together
    assert torch.equal(self_pairs(batch, 0.25, 0, 5)["target"], t)  # seeded by (seed, iteration)
    assert not torch.equal(self_pairs(batch, 0.25, 0, 6)["target"], t)
    # two processes, each with its half of the global batch, choose the one-process pairs
    batch["img"] = 10.0 + torch.arange(n, dtype=torch.float)[:, None, None, None].expand(n, 3, 4, 2)
    whole = self_pairs(batch, 0.5, 0, 5)["target"]
    halves = [
        self_pairs({k: v[r * n // 2 : (r + 1) * n // 2] for k, v in batch.items()}, 0.5, 0, 5, r, 2)
        for r in (0, 1)
    ]
    assert torch.equal(torch.cat([h["target"] for h in halves]), whole)
    assert not torch.equal(halves[0]["target"] == 2.0, halves[1]["target"] == 2.0)  # shares differ


class _MeanReID(nn.Module):
    """A stand-in re-ID network: the per-channel mean of the image (D = 3)."""

    feature_parts = (3,)

    def forward(self, x):
        return x.mean((2, 3))


class _PoseTint(nn.Module):
    """A stand-in generator: the image plus the mean of the pose map (so every pose gives a
    different image)."""

    def forward(self, x):
        return (x[:, :3] + x[:, 3:].mean(1, keepdim=True)).clamp(-1, 1)


def test_fused_test_time_features():
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    gan = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    poses = torch.stack([torch.full((POSE_CHANNELS, 16, 8), 0.1 * k) for k in range(8)])
    views = PoseViewsReID(_MeanReID(), _PoseTint(), poses, gan, imagenet)
    assert views.feature_parts == (3,) * 9
    x = torch.randn(4, 3, 32, 16)
    out = views(x)
    assert out.shape == (4, 9 * 3)
    original, per_pose = split_views(out, 8)
    assert torch.allclose(original, x.mean((2, 3)))
    # view k: the image in [-1, 1] at the generator's size, + 0.1 k, back to ImageNet statistics
    g = F.interpolate(renormalize(x, *imagenet, *gan), size=(16, 8), mode="bilinear")
    y = F.interpolate((g + 0.3).clamp(-1, 1), size=(32, 16), mode="bilinear")
    assert torch.allclose(per_pose[:, 3], renormalize(y, *gan, *imagenet).mean((2, 3)), atol=1e-5)
    # fusion: average / max of the (normalised) views; original+avg concatenates both halves
    avg = view_features(original, per_pose, "avg")
    assert torch.allclose(avg, F.normalize(fuse_features(per_pose, "avg"), dim=1))
    mx = view_features(original, per_pose, "max")
    assert torch.allclose(mx, F.normalize(F.normalize(per_pose, dim=2).amax(1), dim=1))
    both = view_features(original, per_pose, "original+max")
    assert both.shape == (4, 6) and torch.allclose(both[:, 3:], mx)
    assert torch.allclose(both[:, :3], F.normalize(original, dim=1))
    with pytest.raises(ValueError, match="unknown"):
        view_features(original, per_pose, "median")


class _CountingTint(_PoseTint):
    """:class:`_PoseTint` that counts the images it draws."""

    drawn = 0

    def forward(self, x):
        type(self).drawn += x.shape[0]
        return super().forward(x)


def _fusion_test_sets():
    """A query of 5 and a gallery of 7 random images (seeded), pids 0-4, cameras 0 / 1."""

    class _Set(torch.utils.data.Dataset):
        def __init__(self, n, seed, cam):
            self.x = torch.randn(n, 3, 32, 16, generator=torch.Generator().manual_seed(seed))
            self.cam = cam

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"img": self.x[i], "pid": i % 5, "camid": self.cam}

    def loader(ds):
        return torch.utils.data.DataLoader(ds, batch_size=2)

    return {"toy": {"query": loader(_Set(5, 1, 0)), "gallery": loader(_Set(7, 2, 1))}}


def _fusion(names):
    from types import SimpleNamespace

    poses = torch.stack([torch.full((POSE_CHANNELS, 16, 8), 0.1 * k) for k in range(8)])
    gan = ((0.5,) * 3, (0.5,) * 3)
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    views = PoseViewsReID(_MeanReID(), _CountingTint(), poses, gan, imagenet)
    t = SimpleNamespace(FLIP=False, METRIC="cosine", MEMORY_MB=512)
    return evaluate_pose_fusion(views, _fusion_test_sets(), "cpu", t, names)


def _fusion_worker(out_dir: str) -> None:
    from dgnet_plugin.engine.launch import distributed_session
    from dgnet_plugin.utils import comm

    with distributed_session("cpu"):
        res = _fusion(("original", "original+avg", "max"))
        torch.save(
            {"res": res, "drawn": _CountingTint.drawn}, f"{out_dir}/fusion{comm.get_rank()}.pt"
        )


def test_fusion_over_two_processes_shards_the_test_images_and_matches_one_process(tmp_path):
    """PN-GAN's test-time fusion with --num-gpus 2: each process draws the pose views of its
    share of query and gallery only (no image twice), and both get the one-process table."""
    from dgnet_plugin.engine.launch import launch

    launch(_fusion_worker, 2, args=(str(tmp_path),))
    r0, r1 = (torch.load(tmp_path / f"fusion{r}.pt", weights_only=False) for r in range(2))
    assert r0["drawn"] + r1["drawn"] == 8 * (5 + 7)  # 8 poses x each test image, once
    assert r0["drawn"] == 8 * (3 + 4) and r1["drawn"] == 8 * (2 + 3)
    _CountingTint.drawn = 0
    one = _fusion(("original", "original+avg", "max"))
    assert _CountingTint.drawn == 8 * 12
    for r in (r0, r1):
        for name, rows in one.items():
            for metric, value in rows["toy"].items():
                assert r["res"][name]["toy"][metric] == pytest.approx(value), (name, metric)


def test_pngan_configs_build_and_bad_values_are_refused():
    from dgnet_plugin.config.validate import validate_config
    from dgnet_plugin.methods.pngan import RULES

    for name in ("pngan_r50", "pngan_cuhk03_cpu_demo"):
        cfg = load_cfg_file(str(REPO / "configs" / f"{name}.yml"))
        assert cfg.ENGINE.NAME == "PNGANEngine" and cfg.MODEL.GEN.NAME == "ResnetGenerator"
        assert cfg.MODEL.GEN.N_BLOCKS == 9 and cfg.POSE.NUM_CANONICAL == 8
        assert cfg.LOSS.LABEL.GENERATED == "hard" and cfg.LOSS.POSE_L1 == 10.0
        validate_config(cfg, RULES)
    with pytest.raises(ConfigError, match="POSE.SOURCE"):
        validate_config(_demo_cfg("POSE.SOURCE", ""), RULES)
    with pytest.raises(ConfigError, match="PNGAN.TEST_FEATURES"):
        validate_config(_demo_cfg("PNGAN.TEST_FEATURES", "('mean',)"), RULES)
    with pytest.raises(ConfigError, match="PNGAN.SELF_PAIRS"):
        validate_config(_demo_cfg("PNGAN.SELF_PAIRS", "1.5"), RULES)


TINY = [
    "MODEL.GEN.DIM", "8", "MODEL.GEN.N_BLOCKS", "2", "MODEL.DIS.DIM", "8",
    "GAN.SIZE", "(32, 16)", "GAN.MAX_ITER", "2", "GAN.DECAY_START", "1",
    "GAN.IMS_PER_BATCH", "4", "GAN.CHECKPOINT_PERIOD", "0", "GAN.VIS_PERIOD", "0",
    "PNGAN.NUM_SOURCES", "3", "PNGAN.TEST_FEATURES", "('original+avg', 'max')",
    "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "SOLVER.CHECKPOINT_PERIOD", "0",
    "SOLVER.IMS_PER_BATCH", "8", "GENERATED.PER_BATCH", "4", "GENERATED.BATCH_SIZE", "8",
    "VIS.NUM_IMAGES", "2", "POSE.SOURCE", POSES_CSV, "PNGAN.SELF_PAIRS", "0.5",
    "MASKS.FOLDER", str(SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_masks"),
]  # fmt: skip


#: the released pose input and test of the full recipe: a 3-channel pose picture, the fused
#: features not normalised again, squared Euclidean distances, the 8-view concatenation too
RELEASED_TEST = [
    "POSE.FORMAT", "picture", "PNGAN.FUSED_L2", "False", "TEST.METRIC", "euclidean",
    "PNGAN.TEST_FEATURES", "('original+avg', 'max', 'concat')",
]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize("extra", [[], RELEASED_TEST], ids=["demo", "released_test"])
def test_pngan_all_stages_on_real_crops(tmp_path, extra):
    from train_net import cli

    root = make_tiny_market(tmp_path / "data", n_train_ids=6, n_test_ids=3)
    out = tmp_path / "out"
    assert cli(["--config-file", DEMO, *cli_opts(root, out, 32), *TINY, *extra]) == 0

    poses = json.loads((out / "canonical_poses.json").read_text())
    assert len(poses["centres"]) == 8 and (out / "canonical_poses.jpg").is_file()
    assert (out / "pose_gan" / "images" / "pose_transfer_00000002.jpg").is_file()
    # the held-out figures on the query pairs of the 3 test identities
    gan_log = (out / "pose_gan" / "log.txt").read_text()
    assert "held-out pose transfer at iteration 2 (3 pairs): transfer_l1 " in gan_log
    assert "transfer_l1_fg" in gan_log and "pose_sensitivity" in gan_log
    assert (out / "pose_gan" / "images" / "canonical_views_00000002.jpg").is_file()
    # 3 sources x 8 canonical poses, with their provenance and their identity
    with open(out / "generated" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    assert {r["target"] for r in rows} == {f"pose{k}" for k in range(8)}
    assert all(r["source"].endswith(".jpg") and int(r["source_pid"]) > 0 for r in rows)
    assert rows[0]["generator"] == "pngan pose generator"
    assert rows[0]["file"].startswith(f"bounding_box_train/{int(rows[0]['source_pid']):04d}_c")
    log = (out / "log.txt").read_text()
    assert " real + 24 generated images" in log
    table = log[log.rindex("Evaluation at iteration 2") :]
    for row in (
        "real + pose-normalised, image feature",
        "baseline (real images only)",
        "original + pose-normalised (avg)",
        "pose-normalised, max fusion",
    ):
        assert row in table, row
    if extra:  # the released 8-view concatenation
        assert "pose-normalised, concat fusion" in table


def test_fusion_rows_on_a_subset_of_test_identities():
    from torch.utils.data import DataLoader

    from dgnet_plugin.data.pairs import ImageListDataset
    from dgnet_plugin.methods.pngan.engine import subset_test_sets

    def loader(items):
        return DataLoader(ImageListDataset(items, transform=None), batch_size=4)

    query = [("q1.jpg", 5, 0), ("q2.jpg", 3, 1), ("q3.jpg", 9, 0)]
    gallery = [("g1.jpg", 3, 1), ("g2.jpg", 9, 0), ("g3.jpg", 5, 1), ("g0.jpg", 0, 0)]
    sets = {"market": {"query": loader(query), "gallery": loader(gallery)}}
    sub = subset_test_sets(sets, 2)["market"]  # the two lowest query identities: 3 and 5
    assert [it[0] for it in sub["query"].dataset.items] == ["q1.jpg", "q2.jpg"]
    assert [it[0] for it in sub["gallery"].dataset.items] == ["g1.jpg", "g3.jpg", "g0.jpg"]
    assert sub["query"].batch_size == 4
