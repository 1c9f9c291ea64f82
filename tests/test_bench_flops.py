"""``benchmarks/bench_flops.py --quick``: the estimate table of the IDE recipe still builds."""

from __future__ import annotations

from conftest import import_benchmark


def test_flop_estimate_of_the_ide_recipe(capsys):
    bench = import_benchmark("bench_flops")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| ide | re-ID"))
    gflop = float(row.split("|")[4].split()[0])
    # ResNet-50 at 256x128, last stride 1, 32 images: forward + backward ~ 3 x 32 x 5-6 GFLOP
    assert 400 < gflop < 700, row
    assert "GPU-hours in all" in out


def test_flop_estimates_of_every_stage_kind(capsys):
    """One recipe per kind of stage (the visible-infrared proxy, the CycleGAN family's
    translator + generation + re-ID + baseline), so that no recipe's path rots."""
    bench = import_benchmark("bench_flops")
    assert bench.main(["--methods", "agw", "ptgan"]) == 0
    out = capsys.readouterr().out
    stages = [line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| ")]
    assert {"AGW", "PTGAN", "generation", "re-ID (generated)", "baseline (source only)"} <= set(
        stages
    )
