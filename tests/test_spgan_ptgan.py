"""SPGAN and PTGAN: the contrastive term on hand-made pairs, SiaNet, the mask providers (a
folder the test writes, a TorchScript model cached on disk), the identity-range domain split,
each translator stage on real CUHK03 crops, and the Market-1501 -> DukeMTMC-reID configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import CUHK03_MARKET, REPO, SHARED_DATA, cli_opts, make_tiny_market
from PIL import Image

import dgnet_plugin  # noqa: F401
from dgnet_plugin.config import load_cfg_file

CUHK03_MASKS = SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_masks"


# ----------------------------------------------------------------------------- SPGAN
def test_spgan_contrastive_on_hand_made_pairs():
    from dgnet_plugin.methods.spgan import spgan_contrastive_loss

    e = torch.tensor([[1.0, 0.0]])
    far = torch.tensor([[-1.0, 0.0]])  # distance 2 = the margin
    mid = torch.tensor([[0.0, 1.0]])  # distance sqrt(2)
    # translations identical to their sources, targets at distance 2: every term is 0
    assert spgan_contrastive_loss(e, e, far, far, 2.0).item() == pytest.approx(0.0)
    # positives at d = sqrt(2): d^2 / 2 = 1 each; negatives (fake_b=mid, b=far) d = sqrt(2)
    # and (fake_a=far, a=e) d = 2: (2 - sqrt(2))^2 / 2 and 0
    got = spgan_contrastive_loss(e, mid, far, far, 2.0).item()
    neg = (2 - 2**0.5) ** 2 / 2
    assert got == pytest.approx((1.0 + 0.0 + neg + 0.0) / 4)


def test_siamese_net_embeds_on_the_unit_sphere():
    from dgnet_plugin.methods.spgan import SiameseNet

    for blocks, size in ((4, (256, 256)), (2, (64, 32))):
        e = SiameseNet(3, 8, blocks).eval()(torch.randn(3, 3, *size))
        assert e.shape == (3, 64)
        assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


# ----------------------------------------------------------------------------- masks
def test_folder_mask_provider_on_a_folder_the_test_writes(tmp_path):
    from dgnet_plugin.offline_augmentation.masks import FolderMaskProvider, MaskNotFoundError

    img = tmp_path / "imgs" / "0001_c1s1_000001_00.jpg"
    img.parent.mkdir()
    Image.new("RGB", (4, 8), (90, 20, 200)).save(img)
    m = np.zeros((8, 4), np.uint8)
    m[2:6, 1:3] = 255
    m[0, 0] = 128
    (tmp_path / "masks" / "query").mkdir(parents=True)
    Image.fromarray(m).save(tmp_path / "masks" / "query" / "0001_c1s1_000001_00.png")
    provider = FolderMaskProvider(str(tmp_path / "masks"))
    mask = provider(str(img))
    assert mask.shape == (1, 8, 4)
    assert mask[0, 3, 1] == 1.0 and mask[0, 0, 1] == 0.0
    assert mask[0, 0, 0] == pytest.approx(128 / 255)
    assert provider(str(img), (2, 4)).shape == (1, 4, 2)  # resized to (W, H)
    with pytest.raises(MaskNotFoundError, match="no mask for"):
        provider(str(tmp_path / "imgs" / "0002_c1s1_000001_00.jpg"))
    with pytest.raises(MaskNotFoundError, match="does not exist"):
        FolderMaskProvider(str(tmp_path / "nowhere"))


class _RedIsPerson(torch.nn.Module):
    def forward(self, x):  # (1, 3, H, W) in [0, 1] -> (1, 1, H, W)
        return (x[:, :1] > 0.5).float()


def test_model_mask_provider_runs_once_and_caches_on_disk(tmp_path):
    from dgnet_plugin.offline_augmentation.masks import MaskNotFoundError, ModelMaskProvider

    img = np.zeros((8, 4, 3), np.uint8)
    img[:4, :, 0] = 255  # the top half is "the person"
    path = tmp_path / "0001_c1s1_000001_00.png"
    Image.fromarray(img).save(path)
    model = tmp_path / "seg.ts"
    torch.jit.script(_RedIsPerson()).save(str(model))
    provider = ModelMaskProvider(str(model), str(tmp_path / "cache"))
    mask = provider(str(path))
    assert mask.shape == (1, 8, 4)
    assert mask[0, :4].min() == 1.0 and mask[0, 4:].max() == 0.0
    cached = provider.cache_path(str(path))
    assert cached.endswith(".png") and (tmp_path / "cache").is_dir()
    # the cache is used: a provider whose model would fail still answers
    model.write_bytes(b"broken")
    again = ModelMaskProvider(str(model), str(tmp_path / "cache"))
    assert torch.equal(again(str(path)), mask)
    with pytest.raises(MaskNotFoundError, match="does not exist"):
        ModelMaskProvider(str(tmp_path / "none.ts"), str(tmp_path / "cache"))


def test_the_shared_cuhk03_masks_cover_the_training_images():
    from dgnet_plugin.offline_augmentation.masks import FolderMaskProvider

    provider = FolderMaskProvider(str(CUHK03_MASKS))
    img = sorted((CUHK03_MARKET / "bounding_box_train").glob("*.jpg"))[0]
    mask = provider(str(img))
    assert mask.shape == (1, 128, 64) and 0.05 < mask.mean() < 0.95


# ----------------------------------------------------------------------------- domains
def test_identity_subset_cuts_two_domains(tmp_path):
    from dgnet_plugin.data import MarketLayout
    from dgnet_plugin.offline_augmentation.subsets import subset_done, write_identity_subset

    counts = write_identity_subset(str(CUHK03_MARKET), str(tmp_path / "t"), (844, 850), (851, 855))
    ds = MarketLayout(root=str(tmp_path / "t"))
    assert {it[1] for it in ds.query} == set(range(851, 856))
    assert counts["bounding_box_train"] == len(ds.train) > 0  # from the test splits
    assert subset_done(str(tmp_path / "t"))
    assert json.loads((tmp_path / "t" / "SUBSET.json").read_text())["test_pids"] == [851, 855]
    with pytest.raises(ValueError, match="overlap"):
        write_identity_subset(str(CUHK03_MARKET), str(tmp_path / "u"), (1, 10), (5, 20))


# ----------------------------------------------------------------------------- translator stages
TINY_GAN = [
    "MODEL.GEN.DIM", "8", "MODEL.GEN.N_BLOCKS", "1", "MODEL.DIS.DIM", "8",
    "GAN.MAX_ITER", "2", "GAN.DECAY_START", "1", "GAN.IMS_PER_BATCH", "2",
    "GAN.CHECKPOINT_PERIOD", "2", "GAN.VIS_PERIOD", "0", "VIS.NUM_IMAGES", "2",
    "DOMAINS.SPLIT.ROOT", "",
]  # fmt: skip


@pytest.fixture(scope="module")
def two_domains(tmp_path_factory):
    base = tmp_path_factory.mktemp("domains")
    src = make_tiny_market(base / "source", n_train_ids=4, n_test_ids=2)
    tgt = make_tiny_market(base / "target", n_train_ids=4, n_test_ids=2, skip_ids=300)
    return src, tgt


@pytest.mark.parametrize("method", ["spgan", "ptgan"])
def test_translator_stage_trains_on_real_crops(method, two_domains, tmp_path):
    from train_net import cli

    src, tgt = two_domains
    out = tmp_path / "out"
    argv = [
        "--stage", "gan",
        "--config-file", str(REPO / "configs" / f"{method}_cpu_demo.yml"),
        *cli_opts(src, out, 16), *TINY_GAN,
        "DATASETS.NAMES", "('market_layout',)",
        "DATASETS.TESTS", f"('market_layout@{tgt}',)",
        "DOMAINS.TARGET", f"('market_layout@{tgt}',)",
    ]  # fmt: skip
    if method == "ptgan":
        argv += ["MASKS.FOLDER", str(CUHK03_MASKS)]
    assert cli(argv) == 0
    records = [json.loads(x) for x in (out / "gan" / "metrics.json").read_text().splitlines()]
    losses = {k for r in records for k in r}
    extra = "contrastive" if method == "spgan" else "masked_id"
    assert {"gan_ab", "gan_ba", "cycle", "dis_a", "dis_b", extra} <= losses
    assert ("identity" in losses) == (method == "spgan")  # PTGAN: the masked term instead
    assert (out / "gan" / "model_final.pth").is_file()
    assert not (out / "model_final.pth").exists()  # only the stage ran


@pytest.mark.parametrize("method", ["spgan", "ptgan"])
def test_market_to_duke_configs_build(method):
    from dgnet_plugin.config.validate import validate_config
    from dgnet_plugin.modeling import build_model

    cfg = load_cfg_file(str(REPO / "configs" / f"{method}_r50.yml"), freeze=False)
    validate_config(cfg)
    assert cfg.DATASETS.NAMES == ("market1501",) and cfg.DATASETS.TESTS == ("dukemtmcreid",)
    assert cfg.DOMAINS.TARGET == ("dukemtmcreid",) and cfg.GENERATED.ONLY
    assert cfg.LOSS.LABEL.GENERATED == "hard" and cfg.LOSS.CYCLE == 10.0
    if method == "spgan":
        assert cfg.LOSS.IDENTITY == 5.0 and cfg.SPGAN.CONTRASTIVE == 2.0
        assert cfg.SPGAN.MARGIN == 2.0
    cfg.MODEL.BACKBONE.PRETRAIN = False
    reid = build_model(cfg, 751)
    assert reid.classifier.classifier.weight.shape[0] == 751
    cfg.MODEL.META_ARCHITECTURE = "SPGAN" if method == "spgan" else "CycleGAN"
    gan = build_model(cfg, 0)
    assert len(gan.gen_ab.net[3].blocks) == 9
    out = gan.dis_b(gan.gen_ab(torch.zeros(1, 3, 64, 64)))[0]
    # SPGAN's discriminator pads as TF's SAME (MODEL.DIS.PADDING tf_same): 8x8 at 64
    assert out.shape == ((1, 1, 8, 8) if method == "spgan" else (1, 1, 6, 6))
