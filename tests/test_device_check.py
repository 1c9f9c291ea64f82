"""``benchmarks/device_recipes.py --dry-run``: the device check of every method's full recipe
(bf16 and float32, throughput, peak memory, loss agreement, ranking) runs its code paths on
the CPU at tiny shapes and writes its tables."""

from __future__ import annotations

import csv

from conftest import import_benchmark


def test_dry_run_writes_one_row_per_training_stage(tmp_path):
    check = import_benchmark("device_recipes")
    methods = ("ide", "dgnet", "lsro", "camstyle")  # D2RL's dry run needs about 13 GB
    assert check.main(["--dry-run", "--out", str(tmp_path), "--methods", *methods]) == 0
    rows = list(csv.DictReader(open(tmp_path / "recipes.csv")))
    assert [(r["method"], r["stage"]) for r in rows] == [
        (m, s) for m, s, *_ in check.training_stages() if m in methods
    ]
    for r in rows:
        assert not r["note"], r
        assert float(r["bf16 it/s"]) > 0 and float(r["fp32 it/s"]) > 0
        # on the CPU both precisions run float32: the same losses
        assert float(r["max rel loss diff"]) == 0.0
    ranking = list(csv.DictReader(open(tmp_path / "ranking.csv")))
    assert ranking[0]["shape"] == "tiny" and 0 < float(ranking[0]["mAP"]) <= 1
    assert "| method | stage |" in (tmp_path / "recipes.md").read_text()
