"""Dataset scan on real CUHK03 crops (tiny_market) plus hand-made bad files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import CUHK03_MARKET
from PIL import Image

from dgnet_plugin.data.datasets import DatasetNotFoundError, MarketLayout, scan_market_folder
from dgnet_plugin.data.scan import DatasetScan, scan_market_folder_report

SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _copy_layout(src: Path, dst: Path) -> Path:
    """Symlinks to ``src``'s images (tiny_market is shared by the session: not modified)."""
    for split in SPLITS:
        (dst / split).mkdir(parents=True)
        for p in (src / split).iterdir():
            (dst / split / p.name).symlink_to(p.resolve())
    return dst


def _real_image(tiny_market: Path) -> Path:
    return sorted((tiny_market / "bounding_box_train").iterdir())[0].resolve()


@pytest.fixture
def messy(tiny_market, tmp_path) -> Path:
    """tiny_market (116 train / 12 query / 45 gallery images; train ids 0001-0012, test ids
    0768-0773, each test id with query and gallery images from both cameras) plus:

    train: an upper-case .JPG (new id 0999), a 1x1 PNG (new id 0998), a corrupt .jpg
           (0996), a truncated .jpg (0995: header fine, decoding fails), notes.txt, .DS_Store
    query: 9999 (no gallery image at all), 9998_c1 (gallery only from c1), 9997_c1 (gallery
           from c2: a true match)
    gallery: readme.jpg (unparsable name), 9998_c1, 9997_c2, a sub-folder
    """
    root = _copy_layout(tiny_market, tmp_path / "messy")
    real = _real_image(tiny_market)
    train, query, gallery = (root / s for s in SPLITS)
    (train / "0999_c1s1_000000_00.JPG").symlink_to(real)
    Image.new("RGB", (1, 1)).save(train / "0998_c2s1_000000_00.png")
    (train / "0996_c1s1_000000_00.jpg").write_bytes(b"definitely not a jpeg")
    data = real.read_bytes()
    (train / "0995_c1s1_000000_00.jpg").write_bytes(data[: len(data) // 2])
    (train / "notes.txt").write_text("hello")
    (train / ".DS_Store").write_bytes(b"\0")
    (query / "9999_c1s1_000000_00.jpg").symlink_to(real)
    (query / "9998_c1s1_000000_00.jpg").symlink_to(real)
    (query / "9997_c1s1_000000_00.jpg").symlink_to(real)
    (gallery / "readme.jpg").symlink_to(real)
    (gallery / "9998_c1s1_000001_00.jpg").symlink_to(real)
    (gallery / "9997_c2s1_000001_00.jpg").symlink_to(real)
    (gallery / "extra").mkdir()
    return root


def test_tiny_market_is_clean(tiny_market):
    scan = scan_market_folder_report(str(tiny_market), show_progress=False)
    assert scan.clean
    assert {k: (c.images, c.identities, c.cameras) for k, c in scan.counts.items()} == {
        "bounding_box_train": (116, 12, 2),
        "query": (12, 6, 2),
        "bounding_box_test": (45, 6, 2),
    }
    assert scan.format().endswith("no problems found")


def test_every_problem_is_reported_not_raised(messy):
    scan = scan_market_folder_report(str(messy), show_progress=False)
    train, query, gallery = (str(messy / s) for s in SPLITS)
    c = scan.counts
    # train: 116 + .JPG + 1x1 + truncated (header only: readable); the corrupt one is not counted
    assert (c["bounding_box_train"].images, c["bounding_box_train"].identities) == (119, 15)
    assert (c["query"].images, c["query"].identities) == (15, 9)
    assert (c["bounding_box_test"].images, c["bounding_box_test"].identities) == (47, 8)
    reasons = dict(scan.skipped)
    assert sorted(reasons) == sorted(
        [
            f"{train}/.DS_Store",
            f"{train}/notes.txt",
            f"{gallery}/extra",
            f"{gallery}/readme.jpg",
        ]
    )
    assert reasons[f"{train}/notes.txt"].startswith("not an image (extension .txt")
    assert "Market-1501 naming" in reasons[f"{gallery}/readme.jpg"]
    assert "hidden" in reasons[f"{train}/.DS_Store"] and "folder" in reasons[f"{gallery}/extra"]
    assert [p for p, _ in scan.unreadable] == [f"{train}/0996_c1s1_000000_00.jpg"]
    assert scan.too_small == [(f"{train}/0998_c2s1_000000_00.png", 1, 1)]
    assert scan.unmatched_queries == [
        f"{query}/9998_c1s1_000000_00.jpg",
        f"{query}/9999_c1s1_000000_00.jpg",
    ]
    text = scan.format()
    assert "bounding_box_train: 119 images, 15 identities, 2 cameras" in text
    assert "skipped files: 4" in text and "unreadable images" in text
    assert "images smaller than 16x8 (HxW): 1" in text and "0998_c2s1_000000_00.png: 1x1" in text
    assert "queries without a gallery image" in text and "9999_c1s1_000000_00.jpg" in text
    assert not scan.clean


def test_full_decode_finds_the_truncated_file(messy):
    scan = scan_market_folder_report(str(messy), decode=True, show_progress=False)
    train = messy / "bounding_box_train"
    assert [p for p, _ in scan.unreadable] == [
        str(train / "0995_c1s1_000000_00.jpg"),
        str(train / "0996_c1s1_000000_00.jpg"),
    ]
    assert scan.counts["bounding_box_train"].images == 118 and scan.decoded


def test_min_size_is_configurable(tiny_market):
    # the CUHK03 crops are 64 wide and 128 high
    scan = scan_market_folder_report(str(tiny_market), min_size=(129, 8), show_progress=False)
    assert len(scan.too_small) == 116 + 12 + 45
    assert scan.too_small[0][1:] == (64, 128)
    assert scan_market_folder_report(
        str(tiny_market), min_size=(128, 64), show_progress=False
    ).clean


def test_junk_and_distractors_are_counted(tiny_market, tmp_path):
    root = _copy_layout(tiny_market, tmp_path / "j")
    real = _real_image(tiny_market)
    (root / "bounding_box_train" / "-1_c1s1_000000_00.jpg").symlink_to(real)
    (root / "bounding_box_test" / "0000_c1s1_000000_00.jpg").symlink_to(real)
    (root / "bounding_box_test" / "-1_c2s1_000000_00.jpg").symlink_to(real)
    scan = scan_market_folder_report(str(root), show_progress=False)
    t, g = scan.counts["bounding_box_train"], scan.counts["bounding_box_test"]
    assert (t.images, t.identities, t.junk) == (117, 12, 1)
    assert (g.images, g.identities, g.junk, g.distractors) == (47, 7, 1, 1)
    assert "1 junk (pid -1, dropped from training)" in scan.format()


def test_cache_is_reused_until_a_file_changes(messy, tmp_path):
    cache = tmp_path / "out" / "dataset_scan.json"
    first = scan_market_folder_report(str(messy), cache_path=str(cache), show_progress=False)
    assert cache.is_file() and not first.from_cache
    again = scan_market_folder_report(str(messy), cache_path=str(cache), show_progress=False)
    assert again.from_cache and again.to_dict() == first.to_dict()
    assert "(cached)" in again.format()
    # another option, a new file, a touched file: scanned again
    assert not scan_market_folder_report(
        str(messy), decode=True, cache_path=str(cache), show_progress=False
    ).from_cache
    Image.new("RGB", (64, 128)).save(messy / "query" / "0768_c1s1_000099_00.jpg")
    fresh = scan_market_folder_report(str(messy), cache_path=str(cache), show_progress=False)
    assert not fresh.from_cache and fresh.counts["query"].images == 16
    os.utime(messy / "query" / "0768_c1s1_000099_00.jpg", (1, 1))
    assert not scan_market_folder_report(
        str(messy), cache_path=str(cache), show_progress=False
    ).from_cache
    cache.write_text("{broken")
    assert not scan_market_folder_report(
        str(messy), cache_path=str(cache), show_progress=False
    ).from_cache
    assert DatasetScan.from_dict(fresh.to_dict()).to_dict() == fresh.to_dict()


def test_missing_split_folder(tmp_path):
    (tmp_path / "query").mkdir()
    with pytest.raises(DatasetNotFoundError, match="missing bounding_box_train, bounding_box_test"):
        scan_market_folder_report(str(tmp_path), show_progress=False)


def test_real_cuhk03_layout_has_queries_without_a_true_match():
    """Hand-checked: identity 0815 has its query from c1 and c2 but gallery images only from
    c2 (slots 6-9; its c1 slots 1-4 are missing from the source), so its c2 query cannot
    score. 12 such queries in the full CUHK03 Market-layout folder."""
    assert (CUHK03_MARKET / "query").is_dir(), f"no CUHK03 data at {CUHK03_MARKET}"
    scan = scan_market_folder_report(str(CUHK03_MARKET), show_progress=False)
    assert len(scan.unmatched_queries) == 12
    assert str(CUHK03_MARKET / "query" / "0815_c2s1_000005_00.jpg") in scan.unmatched_queries
    assert scan.counts["bounding_box_train"].images == 7477 and not scan.skipped


# ------------------------------------------------------------------ the loader itself
def test_loader_accepts_upper_case_extensions(tiny_market, tmp_path):
    root = _copy_layout(tiny_market, tmp_path / "upper")
    real = _real_image(tiny_market)
    for name in ("0999_c1s1_000000_00.JPG", "0999_c2s1_000001_00.Jpeg", "0999_c2s1_000002_00.PNG"):
        (root / "bounding_box_train" / name).symlink_to(real)
    (root / "bounding_box_train" / "notes.txt").write_text("x")
    items = scan_market_folder(str(root / "bounding_box_train"), relabel=False, drop_junk=True)
    assert len(items) == 116 + 3
    assert [(os.path.basename(p), pid, cam) for p, pid, cam in items if pid == 999] == [
        ("0999_c1s1_000000_00.JPG", 999, 0),
        ("0999_c2s1_000001_00.Jpeg", 999, 1),
        ("0999_c2s1_000002_00.PNG", 999, 1),
    ]
    ds = MarketLayout(root=str(root))
    assert len(ds.train) == 119 and ds.num_train_pids == 13
    shutil.rmtree(root)
