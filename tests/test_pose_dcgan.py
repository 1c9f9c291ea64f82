"""The core parts of LSRO and PN-GAN: the DCGAN, keypoint providers, pose maps, canonical
poses (k-means on the real CUHK03 keypoints) and test-time feature fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from dgnet_plugin.config import ConfigError, get_cfg
from dgnet_plugin.data.pose import (
    COCO_SKELETON,
    NUM_KEYPOINTS,
    POSE_CHANNELS,
    KeypointError,
    KeypointFile,
    build_keypoint_provider,
    canonical_poses,
    render_pose_map,
)
from dgnet_plugin.evaluation import fuse_features
from dgnet_plugin.losses import vanilla_gan_dis_loss, vanilla_gan_gen_loss
from dgnet_plugin.modeling.discriminators import DCGANDiscriminator, build_discriminator
from dgnet_plugin.modeling.generators import DCGANGenerator, build_generator

POSES_CSV = SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_poses.csv"


# ------------------------------------------------------------------ DCGAN
@pytest.mark.parametrize("size,steps", [((128, 64), 5), ((64, 32), 4)])
def test_dcgan_shapes_and_range(size, steps):
    g = DCGANGenerator(z_dim=100, dim=8, size=size)
    d = DCGANDiscriminator(3, dim=8, size=size)
    z = g.sample_noise(3, torch.Generator().manual_seed(0))
    x = g(z)
    assert x.shape == (3, 3, *size)
    assert x.abs().max() <= 1.0  # tanh
    # transposed convolutions: the noise projection plus one stride-2 step per doubling
    ups = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(ups) == steps + 1 and ups[0].kernel_size == (4, size[1] // 2**steps)
    outs = d(x)
    assert isinstance(outs, list) and len(outs) == 1 and outs[0].shape == (3, 1, 1, 1)


def test_dcgan_built_from_config_and_gradients():
    cfg = get_cfg()
    cfg.MODEL.GEN.NAME, cfg.MODEL.DIS.NAME = "DCGANGenerator", "DCGANDiscriminator"
    cfg.MODEL.GEN.Z_DIM, cfg.MODEL.GEN.DIM, cfg.MODEL.DIS.DIM = 100, 8, 8
    cfg.INPUT.SIZE_TRAIN = (128, 64)
    g, d = build_generator(cfg), build_discriminator(cfg, 3)
    assert g.z_dim == 100 and g(torch.randn(2, 100)).shape == (2, 3, 128, 64)
    fake = g(torch.randn(2, 100))
    # the BCE generator loss reaches G through D; the D loss on detached fakes does not
    vanilla_gan_gen_loss(d(fake)).backward()
    assert all(p.grad is not None for p in g.parameters())
    g.zero_grad()
    vanilla_gan_dis_loss(d(fake.detach()), d(torch.rand(2, 3, 128, 64) * 2 - 1)).backward()
    assert all(p.grad is None for p in g.parameters())
    assert all(p.grad is not None for p in d.parameters())


def test_dcgan_bad_sizes_name_the_key():
    with pytest.raises(ValueError, match="INPUT.SIZE_TRAIN"):
        DCGANGenerator(size=(100, 64))
    with pytest.raises(ValueError, match="INPUT.SIZE_TRAIN"):
        DCGANGenerator(size=(128, 48))  # 48 not divisible by 32
    with pytest.raises(ValueError, match="resize to the GAN"):
        DCGANDiscriminator(3, 8, (128, 64))(torch.zeros(1, 3, 64, 32))
    with pytest.raises(ValueError, match=r"\(N, 100\)"):
        DCGANGenerator(dim=8)(torch.zeros(2, 10))


# ------------------------------------------------------------------ pose maps
def test_a_keypoint_lands_where_it_should():
    kp = np.full((17, 3), np.nan, np.float32)
    kp[0] = (10.0, 20.0, 1.0)  # nose at x=10, y=20 of a 64x128 image
    pose = render_pose_map(kp, (128, 64), (64, 128), sigma=1.5)
    assert pose.shape == (POSE_CHANNELS, 128, 64) == (17 + 19, 128, 64)
    peak = divmod(int(pose[0].argmax()), 64)
    # pixel (i, j) sits at (j + 0.5, i + 0.5): (10, 20) is the corner of pixels 9..10 x 19..20
    assert peak in {(19, 9), (19, 10), (20, 9), (20, 10)}
    assert pose[0, 19, 9] == pytest.approx(np.exp(-(0.5**2 * 2) / (2 * 1.5**2)), rel=1e-5)
    assert pose[1:].abs().sum() == 0  # nothing else drawn: every other keypoint is missing

    # scaled to a 32x16 map: (10, 20) of 64x128 -> (2.5, 5), between pixels (4, 2) and (5, 2)
    small = render_pose_map(kp, (32, 16), (64, 128))
    assert divmod(int(small[0].argmax()), 16) in {(4, 2), (5, 2)}
    assert small[0, 4, 2] == pytest.approx(np.exp(-0.25 / (2 * 1.5**2)), rel=1e-5)
    assert small[0, 5, 2] == pytest.approx(float(small[0, 4, 2]))


def test_a_missing_keypoint_draws_nothing_nor_its_limbs():
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(5, 55, 17), np.linspace(5, 120, 17), 0.9
    kp[9, 2] = 0.1  # left wrist below the visibility threshold
    kp[10, :2] = np.nan  # right wrist not detected
    pose = render_pose_map(kp, (128, 64), (64, 128), min_visibility=0.3)
    assert pose[9].sum() == 0 and pose[10].sum() == 0
    for i, (a, b) in enumerate(COCO_SKELETON):
        limb = pose[NUM_KEYPOINTS + i]
        if {a, b} & {9, 10}:
            assert limb.sum() == 0, (a, b)
        else:
            assert limb.max() > 0.99, (a, b)  # the segment passes through its pixels
    assert render_pose_map(None, (16, 8)).sum() == 0  # no person: an empty map


def test_limb_follows_the_segment():
    kp = np.full((17, 3), np.nan, np.float32)
    kp[5] = (10.5, 10.5, 1.0)  # left shoulder
    kp[7] = (10.5, 50.5, 1.0)  # left elbow, straight below
    limb = render_pose_map(kp, (64, 32))[NUM_KEYPOINTS + COCO_SKELETON.index((5, 7))]
    assert limb[10:51, 10].min() == pytest.approx(1.0)  # on the segment
    assert limb[30, 13] == pytest.approx(np.exp(-9 / 2), rel=1e-5)  # 3 px away, limb_sigma 1
    assert limb[60, 10] < 1e-6  # beyond the elbow


def test_pose_map_tails_are_zero_not_subnormal():
    """Far from a keypoint exp(-d^2 / 2 sigma^2) falls below float32's smallest normal number;
    those subnormals made the rendering and the generator's first convolution ~3x slower on
    the CPU, so the map is exactly 0 there and the formula elsewhere."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(5, 55, 17), np.linspace(5, 120, 17), 1.0
    pose = render_pose_map(kp, (128, 64), (64, 128), sigma=1.0, limb_sigma=0.7)
    tiny = torch.finfo(torch.float32).tiny
    assert not ((pose > 0) & (pose < tiny)).any()
    ys, xs = torch.meshgrid(torch.arange(128) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    arg = -((xs - 5.0) ** 2 + (ys - 5.0) ** 2) / 2  # keypoint 0 at (5, 5), sigma 1
    exact = torch.exp(arg.double())
    keep = arg > -80
    assert torch.allclose(pose[0][keep].double(), exact[keep], rtol=1e-5, atol=0)
    assert (pose[0][~keep] == 0).all() and (~keep).any()


# ------------------------------------------------------------------ keypoint providers
def test_keypoint_file_reads_the_real_csv():
    provider = build_keypoint_provider(str(POSES_CSV))
    assert isinstance(provider, KeypointFile)
    kp, size = provider("/anywhere/bounding_box_train/0001_c1s1_000000_00.jpg")
    assert size == (64, 128) and kp.shape == (17, 3)
    assert tuple(kp[0]) == pytest.approx((11.1, 12.5, 0.998))  # the nose of the first row
    # by file name alone, from another root
    assert provider("0001_c1s1_000000_00.jpg")[0] == pytest.approx(kp)
    # rows without a person give None; unknown images say so
    no_pose = next(k for k, (v, _) in provider.rows.items() if v is None)
    assert provider(no_pose) is None
    with pytest.raises(KeypointError, match="is not in it"):
        provider("bounding_box_train/9999_c1s1_000000_00.jpg")


def test_keypoint_sources_fail_clearly(tmp_path):
    with pytest.raises(KeypointError, match="does not exist"):
        build_keypoint_provider(str(tmp_path / "none.csv"))
    with pytest.raises(KeypointError, match="does not exist"):
        build_keypoint_provider(str(tmp_path / "pose_model.pt"))
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(KeypointError, match="not a TorchScript file"):
        build_keypoint_provider(str(bad))
    (tmp_path / "k.csv").write_text("file,width\n")
    with pytest.raises(KeypointError, match="lacks the column"):
        build_keypoint_provider(str(tmp_path / "k.csv"))
    with pytest.raises(ConfigError, match="POSE.SOURCE"):
        build_keypoint_provider("poses.txt")


def test_keypoint_model_by_path(tmp_path):
    class Fixed(torch.nn.Module):
        def forward(self, x):
            h, w = x.shape[-2:]
            kp = torch.zeros(17, 3)
            kp[:, 0], kp[:, 1], kp[:, 2] = w / 2, h / 2, 1.0
            return kp

    path = tmp_path / "pose.ts"
    torch.jit.script(Fixed()).save(str(path))
    image = next((SHARED_DATA / "cuhk03_market_layout" / "query").iterdir())
    kp, size = build_keypoint_provider(str(path))(str(image))
    assert size == (64, 128) and tuple(kp[3]) == (32.0, 64.0, 1.0)


# ------------------------------------------------------------------ canonical poses
def test_kmeans_gives_8_deterministic_canonical_poses_on_the_real_keypoints():
    _, kps, sizes = KeypointFile(str(POSES_CSV)).all_keypoints("bounding_box_train/")
    assert len(kps) == 7278  # the detected training poses (97.3 %, the data's README)
    centres, counts = canonical_poses(kps, sizes, k=8, seed=0)
    assert centres.shape == (8, 17, 2) and counts.shape == (8,)
    # poses with all 17 keypoints inside the crop (6,421) and upright (6,292)
    assert counts.sum() == 6292
    assert (np.diff(counts) <= 0).all()  # largest cluster first
    again, counts2 = canonical_poses(kps, sizes, k=8, seed=0)
    assert np.array_equal(centres, again) and np.array_equal(counts, counts2)
    # people stand upright: head above shoulders above hips above ankles in every centre
    y = centres[:, :, 1]
    assert (y[:, 0] < y[:, 5:7].mean(1)).all() and (y[:, 5:7].mean(1) < y[:, 11:13].mean(1)).all()
    assert (y[:, 11:13].mean(1) < y[:, 15:17].mean(1)).all()
    assert ((centres >= 0) & (centres <= 1)).all()
    # the centres are distinct poses; each is rendered with src_size (1, 1)
    assert (
        np.linalg.norm(centres[:, None] - centres[None], axis=(2, 3))[~np.eye(8, dtype=bool)].min()
        > 0.02
    )
    pose = render_pose_map(centres[0], (128, 64), (1, 1))
    assert pose.shape == (36, 128, 64) and (pose.flatten(1).max(1).values > 0.5).all()
    with pytest.raises(ValueError, match="at least 8 poses"):
        canonical_poses(kps[:5], sizes[:5])


# ------------------------------------------------------------------ feature fusion
def test_feature_fusion_average_and_max():
    f = torch.tensor([[[3.0, 4.0], [0.0, 2.0]], [[1.0, 0.0], [0.0, -1.0]]])  # (N=2, P=2, D=2)
    # views normalised first: [0.6, 0.8], [0, 1]; [1, 0], [0, -1]
    assert torch.allclose(fuse_features(f, "avg"), torch.tensor([[0.3, 0.9], [0.5, -0.5]]))
    assert torch.allclose(fuse_features(f, "max"), torch.tensor([[0.6, 1.0], [1.0, 0.0]]))
    assert torch.allclose(
        fuse_features(f, "max", normalize=False), torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    )
    with pytest.raises(ValueError, match="avg | max"):
        fuse_features(f, "median")
    with pytest.raises(ValueError, match=r"\(N, P, D\)"):
        fuse_features(f[0], "avg")
