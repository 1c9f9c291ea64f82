"""SYSU-MM01 / RegDB loaders on layout fixtures built from the real SYSU-MM01 sample crops and
from the CUHK03 proxy; the proxy builder; the P x (K visible + K infrared) loader."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, VI_REID
from PIL import Image

from dgnet_plugin.config import get_cfg
from dgnet_plugin.data.build import (
    build_cross_modality_loader,
    build_test_sets,
    load_cross_modality_train_set,
    open_dataset,
)
from dgnet_plugin.data.cross_modality import SYSUMM01, read_sysu_ids
from dgnet_plugin.data.datasets import DatasetNotFoundError
from dgnet_plugin.visible_infrared.proxy import (
    build_regdb_from_samples,
    build_regdb_proxy,
    build_sysu_from_samples,
    build_sysu_proxy,
    proxy_infrared,
)

CUHK03 = SHARED_DATA / "cuhk03_64x128"


@pytest.fixture(scope="module")
def vi_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vi")
    build_sysu_from_samples(str(VI_REID), str(root / "sysu_real"))
    build_regdb_from_samples(str(VI_REID), str(root / "regdb_real"))
    build_sysu_proxy(str(CUHK03), str(root / "sysu_proxy"), 6, 3)
    build_regdb_proxy(str(CUHK03), str(root / "regdb_proxy"), 8, trials=10)
    return root


def test_sysu_layout_of_the_real_samples(vi_root):
    ds = open_dataset("sysu_mm01", str(vi_root / "sysu_real"))
    # 5 people: 2 images in each of cam3 and cam6 (query), in each of cam1, 2, 4, 5 (gallery)
    assert len(ds.query) == 20 and len(ds.gallery) == 40 and ds.train == []
    assert {c for _, _, c, _ in ds.query} == {2, 5}  # 0-based cam3, cam6
    assert {c for _, _, c, _ in ds.gallery} == {0, 1, 3, 4}
    assert set(ds.modalities("query")) == {"infrared"}
    assert set(ds.modalities("gallery")) == {"visible"}
    ds.data = ds.query
    sample = ds[0]
    assert sample["modality"] == "infrared" and sample["img"].mode == "L"
    # the layout: cam<c>/<pid 4 digits>/<frame>, exp/test_id.txt one line of ids
    assert (vi_root / "sysu_real" / "cam3" / "0001").is_dir()
    assert read_sysu_ids(str(vi_root / "sysu_real" / "exp" / "test_id.txt")) == [1, 2, 3, 4, 5]


def test_regdb_layout_of_the_real_samples_and_its_trials(vi_root):
    ds = open_dataset("regdb_trial_7", str(vi_root / "regdb_real"))
    assert len(ds.query) == 20 and len(ds.gallery) == 20  # 4 visible / 4 thermal x 5
    assert set(ds.modalities("query")) == {"visible"}
    assert set(ds.modalities("gallery")) == {"infrared"}
    line = (vi_root / "regdb_real" / "idx" / "test_visible_7.txt").read_text().split("\n")[0]
    assert line.startswith("Visible/1/") and line.split()[1] == "0"


def test_proxy_sysu_layout_is_real_cuhk03_with_single_channel_infrared(vi_root):
    root = vi_root / "sysu_proxy"
    assert "PROXY" in (root / "PROXY.txt").read_text()
    ds = open_dataset("sysu_mm01", str(root))
    assert ds.num_train_pids == 6
    assert read_sysu_ids(str(root / "exp" / "test_id.txt")) == [7, 8, 9]
    ir = [p for p, _, c, _ in ds.train if c in (2, 5)]
    assert ir and all(Image.open(p).mode == "L" for p in ir[:5])
    vis = [p for p, _, c, _ in ds.train if c in (0, 1, 3, 4)]
    assert Image.open(vis[0]).mode == "RGB"
    cams = {c for _, _, c, _ in ds.train}
    assert {1, 2} <= cams  # cam2 and cam3 both occur: the same-location rule is exercised
    # idempotent: a second call keeps the files
    before = os.path.getmtime(ir[0])
    build_sysu_proxy(str(CUHK03), str(root), 6, 3)
    assert os.path.getmtime(ir[0]) == before


def test_proxy_regdb_trials_are_disjoint_halves(vi_root):
    root = vi_root / "regdb_proxy"
    for t in (1, 10):
        ds = open_dataset(f"regdb_trial_{t}", str(root))
        train_ids = {p.split("/")[-2] for p, _, _, _ in ds.train}
        test_ids = {p.split("/")[-2] for p, _, _, _ in ds.query}
        assert len(train_ids) == len(test_ids) == 4 and not train_ids & test_ids
    a = (root / "idx" / "train_visible_1.txt").read_text()
    assert a != (root / "idx" / "train_visible_2.txt").read_text()


def test_proxy_infrared_is_the_documented_rendering():
    img = Image.new("RGB", (8, 16))
    px = img.load()
    for x in range(8):
        for y in range(16):
            # left half red, right half blue, of about equal luma to the eye
            px[x, y] = (200, 40, 40) if x < 4 else (40, 40, 250)
    out = proxy_infrared(img)
    assert out.mode == "L" and out.size == (8, 16)
    a = np.asarray(out, dtype=np.float64)
    assert a[:, 0].mean() > a[:, 7].mean()  # red reads brighter than blue (0.6 R + 0.1 B)


def test_missing_layout_names_the_folder_and_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"cam1.*SYSU-MM01 layout"):
        SYSUMM01(root=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="train_visible_1.txt"):
        open_dataset("regdb", str(tmp_path))


def _cfg(root, *names):
    cfg = get_cfg()
    cfg.DATASETS.ROOT = str(root)
    cfg.DATASETS.NAMES = names
    cfg.DATASETS.TESTS = names
    cfg.INPUT.SIZE_TRAIN = (32, 16)
    cfg.INPUT.SIZE_TEST = (32, 16)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.NUM_IDS, cfg.DATALOADER.NUM_INSTANCE = 3, 2
    return cfg


def test_cross_modality_batches_share_identity_order(vi_root):
    cfg = _cfg(vi_root / "sysu_proxy", "sysu_mm01")
    items, mods, n = load_cross_modality_train_set(cfg)
    assert n == 6 and len(items) == len(mods)
    b = next(build_cross_modality_loader(cfg, items, mods))
    assert b["img_v"].shape == (6, 3, 32, 16) and b["img_i"].shape == (6, 1, 32, 16)
    assert torch.equal(b["pid_v"], b["pid_i"]) and len(set(b["pid_v"].tolist())) == 3
    # the start offset replays the sequence (--resume)
    seq = build_cross_modality_loader(cfg, items, mods)
    next(seq)
    second = next(seq)
    assert torch.equal(
        next(build_cross_modality_loader(cfg, items, mods, 1))["pid_v"], second["pid_v"]
    )


def test_test_loaders_read_infrared_as_one_channel(vi_root):
    cfg = _cfg(vi_root / "sysu_real", "sysu_mm01")
    sets = build_test_sets(cfg)
    (entry,) = sets.values()
    assert entry["protocol"] == "sysu_mm01"
    q, g = next(iter(entry["query"])), next(iter(entry["gallery"]))
    assert q["img"].shape[1] == 1 and g["img"].shape[1] == 3
    assert set(q["modality"]) == {"infrared"}
