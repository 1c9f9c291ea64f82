"""Market-layout dataset, positive pairs and loaders on the real CUHK03 crops."""

import shutil

import pytest
import torch
from conftest import CUHK03_MARKET, REPO

from dgnet_plugin.config import get_cfg, load_cfg_file
from dgnet_plugin.data import DatasetNotFoundError, MarketLayout, PositivePairDataset
from dgnet_plugin.data.build import build_pair_streams, build_test_sets, load_train_set
from dgnet_plugin.data.datasets import CorruptImageError, read_image
from dgnet_plugin.data.transforms import build_random_erasing, build_transforms
from dgnet_plugin.utils import torchreid_compat as tr


def test_market_layout_parses_the_real_cuhk03_split():
    ds = MarketLayout(root=str(CUHK03_MARKET), verbose=False)
    assert len(ds.train) == 7477 and len(ds.query) == 1400 and len(ds.gallery) == 5220
    assert ds.num_train_pids == 767 and {c for *_, c, _ in ds.train} == {0, 1}
    assert sorted({p for _, p, *_ in ds.train}) == list(range(767))  # relabelled
    assert {p for _, p, *_ in ds.query} == {p for _, p, *_ in ds.gallery}
    assert min(p for _, p, *_ in ds.query) == 768  # original ids kept for evaluation


def test_market_layout_is_registered_idempotently_with_torchreid():
    import importlib

    import dgnet_plugin

    assert tr.image_dataset_registry()["market_layout"] is MarketLayout
    tr.register_image_dataset("market_layout", MarketLayout)  # again: no error
    importlib.reload(dgnet_plugin)  # the whole registration again: no error
    assert tr.image_dataset_registry()["market_layout"] is MarketLayout

    class Other(MarketLayout):
        pass

    with pytest.raises(ValueError, match="different image dataset"):
        tr.register_image_dataset("market_layout", Other)


def test_missing_root_names_the_folders_and_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        MarketLayout(root=str(tmp_path / "nowhere"))
    msg = str(e.value)
    assert "bounding_box_train" in msg and "query" in msg and "bounding_box_test" in msg
    assert "DATASETS.ROOT" in msg


def test_missing_torchreid_dataset_names_where_it_looked(tmp_path):
    cfg = get_cfg("dgnet")
    cfg.DATASETS.ROOT = str(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"market1501.*DATASETS.ROOT"):
        load_train_set(cfg)


def test_corrupt_image_names_the_file(tmp_path):
    bad = tmp_path / "0001_c1s1_000000_00.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CorruptImageError, match="0001_c1s1_000000_00.jpg"):
        read_image(str(bad))


def test_positive_is_another_image_of_the_same_identity(tiny_market):
    ds = MarketLayout(root=str(tiny_market), verbose=False)
    cfg = get_cfg("dgnet")
    cfg.INPUT.SIZE_TRAIN = (64, 32)
    pairs = PositivePairDataset(ds.train, build_transforms(cfg, True), None)
    for i in range(0, len(ds.train), 7):
        j = pairs.positive_index(i)
        assert j != i and ds.train[j][1] == ds.train[i][1]
    s = pairs[0]
    assert s["img"].shape == s["pos"].shape == (3, 64, 32) and "img_erased" not in s


def test_pair_streams_and_test_loaders(tiny_market):
    cfg = load_cfg_file(
        str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml"),
        ["DATASETS.ROOT", str(tiny_market), "DATALOADER.NUM_WORKERS", "0"],
    )
    items, k = load_train_set(cfg)
    assert k == 12
    a, b = build_pair_streams(cfg, items)
    ba, bb = next(a), next(b)
    assert ba["img"].shape == (4, 3, 64, 32) and ba["img_erased"].shape == (4, 3, 64, 32)
    assert not torch.equal(ba["pid"], bb["pid"]) or not torch.equal(ba["img"], bb["img"])
    # the normalised image is roughly zero-mean (ImageNet statistics), not in [0, 1]
    assert ba["img"].min() < 0
    ts = build_test_sets(cfg)["market_layout"]
    q = next(iter(ts["query"]))
    assert set(q) >= {"img", "pid", "camid", "impath"} and q["img"].shape[1:] == (3, 64, 32)


def test_corrupt_training_image_stops_the_loader_with_its_name(tiny_market, tmp_path):
    root = tmp_path / "market"
    shutil.copytree(tiny_market, root, symlinks=True)
    bad = root / "bounding_box_train" / "9999_c1s1_000000_00.jpg"
    bad.write_bytes(b"garbage")
    ds = MarketLayout(root=str(root), verbose=False)
    idx = [i for i, it in enumerate(ds.train) if it[0].endswith("9999_c1s1_000000_00.jpg")][0]
    with pytest.raises(CorruptImageError, match="9999_c1s1_000000_00.jpg"):
        ds[idx]


def test_real_infrared_crop_reads_as_one_channel_and_normalises():
    from conftest import vi_items

    from dgnet_plugin.data.transforms import channel_stats

    ir = [s for s in vi_items() if s["modality"] == "infrared"][0]
    rgb, gray = read_image(ir["impath"]), read_image(ir["impath"], "L")
    assert rgb.mode == "RGB" and gray.mode == "L" and gray.size == rgb.size
    # stored as three (almost) equal channels: L keeps the values
    r = torch.tensor(list(rgb.getdata()), dtype=torch.float32)
    g = torch.tensor(list(gray.getdata()), dtype=torch.float32)
    assert (g - r.mean(1)).abs().max() <= 2
    cfg = get_cfg("dgnet")
    cfg.INPUT.FORMAT = "L"
    cfg.INPUT.SIZE_TRAIN = cfg.INPUT.SIZE_TEST = (64, 32)
    assert channel_stats(cfg.INPUT.PIXEL_MEAN, 1) == pytest.approx((0.449,))
    x = build_transforms(cfg, False)(gray)
    assert x.shape == (1, 64, 32)
    raw = build_transforms(cfg, False).transforms[0](gray)  # resized PIL image
    hand = (torch.tensor(list(raw.getdata())).float() / 255 - 0.449) / 0.226
    assert torch.allclose(x.flatten(), hand, atol=1e-5)
    assert build_transforms(cfg, True)(gray).shape == (1, 64, 32)
    erased = build_random_erasing(cfg)
    assert erased(x.clone()).shape == (1, 64, 32)


def test_read_image_rejects_an_unknown_mode_before_reading():
    with pytest.raises(ValueError, match="unknown PIL mode 'rgb'"):
        read_image("/nonexistent.png", "rgb")


def _joint_cfg(flip_prob, padding=0):
    cfg = get_cfg("dgnet")
    cfg.INPUT.SIZE_TRAIN = (4, 3)
    cfg.INPUT.FLIP_PROB, cfg.INPUT.PADDING = flip_prob, padding
    return cfg


def test_joint_flip_keeps_a_hand_made_mask_on_its_image():
    from PIL import Image

    from dgnet_plugin.data.transforms import JointTransform

    # 3x4 image: the left column is white, the rest black; the mask marks that column
    img = Image.new("RGB", (3, 4))
    for y in range(4):
        img.putpixel((0, y), (255, 255, 255))
    mask = torch.zeros(4, 3)
    mask[:, 0] = 1
    pose = torch.zeros(2, 4, 3)
    pose[1, 2, 0] = 1.0  # a keypoint on the white column
    for flip_prob, col in ((0.0, 0), (1.0, 2)):
        out = JointTransform(_joint_cfg(flip_prob), True)(
            {"img": img, "mask": mask, "pose": pose, "pid": 3}
        )
        white = out["img"][0] > 0  # normalised white > 0 > normalised black
        assert out["mask"].shape == (1, 4, 3) and out["pose"].shape == (2, 4, 3)
        assert torch.equal(white, out["mask"][0].bool())
        assert white[:, col].all() and white.sum() == 4
        assert out["pose"][1, 2, col] == 1 and out["pose"].sum() == 1 and out["pid"] == 3


def test_joint_transform_gives_the_image_pipeline_bit_for_bit(tiny_market):
    from PIL import Image

    from dgnet_plugin.data.transforms import JointTransform

    cfg = get_cfg("dgnet")
    cfg.INPUT.SIZE_TRAIN = (64, 32)
    plain, joint = build_transforms(cfg, True), JointTransform(cfg, True)
    paths = sorted((tiny_market / "bounding_box_train").iterdir())[:12]
    for seed, p in enumerate(paths):
        img = read_image(str(p))
        torch.manual_seed(seed)
        a = plain(img)
        torch.manual_seed(seed)
        b = joint({"img": img, "mask": torch.ones(1, img.size[1], img.size[0])})
        assert torch.equal(a, b["img"]) and b["mask"].shape == (1, 64, 32)
    with pytest.raises(ValueError, match="image's size"):
        joint({"img": Image.new("RGB", (3, 4)), "mask": torch.ones(4, 4)})


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_pk_sampler_batches_p_identities_of_k_images(tiny_market):
    import random

    from dgnet_plugin.data.samplers import IdentityBatchSampler

    items = MarketLayout(root=str(tiny_market), verbose=False).train
    pids = [it[1] for it in items]
    state = random.getstate()
    batches = _take(IdentityBatchSampler(pids, 3, 4, seed=5), 12)  # more than one epoch
    assert random.getstate() == state  # the global generator is left alone
    for b in batches:
        assert len(b) == 12
        ids = [pids[i] for i in b]
        assert len(set(ids)) == 3 and all(ids.count(p) == 4 for p in set(ids))
        assert all(len(set(ids[k : k + 4])) == 1 for k in range(0, 12, 4))
    assert batches == _take(IdentityBatchSampler(pids, 3, 4, seed=5), 12)
    assert batches != _take(IdentityBatchSampler(pids, 3, 4, seed=6), 12)
    with pytest.raises(ValueError, match="fewer than P=13"):
        IdentityBatchSampler(pids, 13, 4)


@pytest.mark.parametrize("folder", ["sysu_mm01_example", "sysu_mm01_aligngan_figure"])
def test_cross_modality_sampler_on_real_sysu_crops(folder):
    from conftest import vi_items

    from dgnet_plugin.data.samplers import CrossModalityBatchSampler

    samples = vi_items(folder)
    assert {s["modality"] for s in samples} == {"visible", "infrared"}
    sampler = CrossModalityBatchSampler.from_samples(samples, 2, 3, seed=1)
    assert len(sampler) == 2  # 5 identities, P = 2
    batches = _take(sampler, 6)
    for b in batches:
        assert len(b) == 2 * 2 * 3
        for k in range(2):  # per identity: 3 visible then 3 infrared, one pid
            part = [samples[i] for i in b[6 * k : 6 * k + 6]]
            assert len({s["pid"] for s in part}) == 1
            assert [s["modality"] for s in part] == ["visible"] * 3 + ["infrared"] * 3
        assert len({samples[i]["pid"] for i in b}) == 2
    assert batches == _take(CrossModalityBatchSampler.from_samples(samples, 2, 3, seed=1), 6)
    assert batches != _take(CrossModalityBatchSampler.from_samples(samples, 2, 3, seed=2), 6)
    # a real infrared crop of the batch reads as one channel
    ir = samples[batches[0][3]]
    assert read_image(ir["impath"], "L").mode == "L"
    with pytest.raises(ValueError, match="unknown modality"):
        CrossModalityBatchSampler([1], ["thermal"], 1, 1)
    with pytest.raises(ValueError, match="both visible and infrared"):
        CrossModalityBatchSampler.from_samples(samples, 6, 2)


def test_draw_positive_covers_the_other_items_uniformly():
    from dgnet_plugin.data.samplers import draw_positive

    group = [4, 9, 2, 7]
    for i in group:
        got = [draw_positive(i, group, (k + 0.5) / 300) for k in range(300)]
        assert set(got) == set(group) - {i} and all(got.count(j) == 100 for j in set(got))
    assert draw_positive(5, [5], 0.7) == 5
