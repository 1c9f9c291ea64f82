#!/usr/bin/env python
"""Every method's full recipe on a CUDA device, bf16 and float32: throughput, peak memory,
the agreement of the two precisions' losses, and the ranking at Market-1501 and MSMT17 size.

For each training stage of :data:`bench_flops.STAGES` (the teacher, DG-Net, D2RL, AGW, the
translators / GANs and the re-ID stages of the offline methods; generation and baseline rows
are left out: the same networks), the engine is built from its full recipe
(``configs/<m>_r50*.yml``, SYSU-MM01 recipes for D2RL and AGW) at the recipe's resolution and
batch, with ``SOLVER.AMP`` bf16 and then off (float32), from the same seed. One batch of the
recipe's loader (real CUHK03 crops resized by the recipe's transforms, stand-in generated
images) is moved to the device once and fed to ``train_step`` every iteration, so data
loading is not timed. Per stage and precision: ``--warmup`` iterations (cuDNN autotuning),
then up to ``--iters`` timed ones within the stage's share of ``--budget`` seconds; images/s
counts the batch's images; peak memory is ``torch.cuda.max_memory_allocated``; the loss
agreement is the largest relative difference between the bf16 and float32 summed losses over
the first ``--compare`` iterations (the same weights and batches: only the precision differs).

Then the ranking (``dgnet_plugin.evaluation.ranking.evaluate_features`` on the device,
through ``bench_ranking.run_ours``) on synthetic features of Market-1501's shape (3,368 x
15,913) and MSMT17's (11,659 x 82,161).

Writes ``recipes.md`` and ``recipes.csv`` (training) and ``ranking.csv`` into ``--out``.

    python benchmarks/device_recipes.py --out output/device_check      # on a CUDA machine
    python benchmarks/device_recipes.py --dry-run --out /tmp/x          # CPU, tiny, < 1 min

``--dry-run``: the same code paths on the CPU at 64 x 32 with 4 images per batch, 1 + 1
iterations per precision, the ranking at a tiny shape (on the CPU ``SOLVER.AMP`` is float32
whatever the config says, so the two precisions agree exactly there). A stage whose data is
missing (``DGNET_SHARED_DATA``: the pose / mask files, the VI proxy's sources) is listed as
skipped with the reason.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_flops  # noqa: E402
import bench_ranking  # noqa: E402

from dgnet_plugin.engine.defaults import IterationTrainer  # noqa: E402

DRY = ["INPUT.SIZE_TRAIN", "(64, 32)", "INPUT.SIZE_TEST", "(64, 32)",
       "SOLVER.IMS_PER_BATCH", "4"]  # fmt: skip
NEEDS = {  # data a stage reads beyond the CUHK03 Market layout
    "d2rl": ("cuhk03_64x128", "vi_reid_samples"),
    "agw": ("cuhk03_64x128", "vi_reid_samples"),
    "pngan": ("cuhk03_pose_mask",),
    "ptgan": ("cuhk03_pose_mask",),
}


def training_stages():
    return [s for s in bench_flops.STAGES if s[3] in ("train", "gan", "reid")]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_stage(stage, amp: str, device: str, tmp: Path, args, seconds: float) -> dict:
    """One stage in one precision: ``{"losses", "iters", "sec_per_iter", "images",
    "peak_gb"}``."""
    method, _, recipe, kind, extra = stage
    # D2RL's 3-scale discriminator and DG-Net's ASPP (dilation 9) need 128 x 64
    dry = [*DRY, "INPUT.SIZE_TRAIN", "(128, 64)"] if method in ("d2rl", "dgnet") else DRY
    opts = ["SOLVER.AMP", amp, "SEED", "1", *(dry if args.dry_run else [])]
    random.seed(1), np.random.seed(1), torch.manual_seed(1)  # the same draws in both precisions
    engine = bench_flops.build(method, recipe, kind, extra, tmp, tmp / f"{method}_{kind}_{amp}",
                               device, opts)  # fmt: skip
    dev = engine.device
    batch = engine.to_device(next(engine.build_train_loader(0)))
    images = sum(t.shape[0] for t in _tensors(batch) if t.dim() == 4)
    step = engine.train_step
    if type(engine).train_step is IterationTrainer.train_step:  # run_step only: loader timed
        step = lambda _, it, run=engine.run_step: run(it)  # noqa: E731
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    losses = []
    for it in range(args.warmup):
        losses.append(_total(step(batch, it)))
    _sync(dev)
    t0, n = time.perf_counter(), 0
    while n < args.iters and (n == 0 or time.perf_counter() - t0 < seconds):
        out = step(batch, args.warmup + n)
        if len(losses) < args.compare:
            losses.append(_total(out))
        n += 1
    _sync(dev)
    sec = (time.perf_counter() - t0) / n
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
    del engine, batch, step
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"losses": losses, "iters": n, "sec_per_iter": sec, "images": images, "peak_gb": peak}


def _tensors(batch):
    if torch.is_tensor(batch):
        yield batch
    elif isinstance(batch, dict):
        for v in batch.values():
            yield from _tensors(v)
    elif isinstance(batch, (list, tuple)):
        for v in batch:
            yield from _tensors(v)


def _total(losses: dict) -> float:
    return float(sum(v.detach().float().sum() for v in losses.values()))


def agreement(a: list[float], b: list[float]) -> float:
    """Largest ``|a - b| / max(|b|, 1e-8)`` over the common iterations (``nan``: none)."""
    pairs = list(zip(a, b))
    if not pairs:
        return float("nan")
    return max(abs(x - y) / max(abs(y), 1e-8) for x, y in pairs)


def missing_data(method: str) -> str:
    gone = [d for d in NEEDS.get(method, ()) if not (bench_flops.DATA / d).exists()]
    return f"skipped: {', '.join(gone)} not in {bench_flops.DATA}" if gone else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="output/device_check")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, 2 iterations")
    ap.add_argument("--iters", type=int, default=300, help="timed iterations at most")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compare", type=int, default=10, help="iterations of loss comparison")
    ap.add_argument("--budget", type=float, default=280, help="seconds of timed training")
    ap.add_argument("--methods", nargs="*", default=None)
    args = ap.parse_args(argv)
    if args.dry_run:
        args.iters, args.warmup, args.compare = 1, 1, 2
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run on a CPU")
    torch.set_num_threads(min(2, torch.get_num_threads())) if args.dry_run else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = [s for s in training_stages() if args.methods is None or s[0] in args.methods]
    share = args.budget / max(1, 2 * len(stages))
    n_ids = len({p.name[:4] for p in (bench_flops.DATA / "cuhk03_market_layout" /
                                      "bounding_box_train").iterdir()})  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        half = min(24, n_ids // 2)
        bench_flops._market(tmp / "source", n_train=half)
        bench_flops._market(tmp / "target", skip=half, n_train=half)
        bench_flops._generated(tmp)
        for stage in stages:
            method, name, recipe = stage[:3]
            row = {"method": method, "stage": name, "recipe": recipe, "note": missing_data(method)}
            if not row["note"]:
                try:
                    r = {amp: run_stage(stage, amp, device, tmp, args, share)
                         for amp in ("bf16", "off")}  # fmt: skip
                except Exception as e:  # noqa: BLE001 (one stage's failure is a row, not the end)
                    row["note"] = (
                        f"failed: {type(e).__name__}: {(str(e) + ' ').splitlines()[0][:120]}"
                    )
                else:
                    for amp, key in (("bf16", "bf16"), ("off", "fp32")):
                        x = r[amp]
                        row[f"{key} it/s"] = f"{1 / x['sec_per_iter']:.2f}"
                        row[f"{key} img/s"] = f"{x['images'] / x['sec_per_iter']:.0f}"
                        row[f"{key} peak GB"] = f"{x['peak_gb']:.2f}"
                        row[f"{key} iters"] = x["iters"]
                    row["images/iter"] = r["bf16"]["images"]
                    row["max rel loss diff"] = (
                        f"{agreement(r['bf16']['losses'], r['off']['losses']):.2e}"
                    )
            rows.append(row)
            print(row, flush=True)
        ranking = []
        for shape in ("tiny",) if args.dry_run else ("market", "msmt"):
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            r = bench_ranking.run_ours(shape, device)
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else math.nan
            s = bench_ranking.SHAPES[shape]
            ranking.append({"shape": shape, "queries": s["q"], "gallery": s["g"],
                            "sec": f"{r['sec']:.3f}", "peak GB": f"{peak:.2f}",
                            "Rank-1": f"{r['cmc'][0]:.4f}", "mAP": f"{r['mAP']:.4f}"})  # fmt: skip
            print(ranking[-1], flush=True)
    write(out, rows, ranking, device, args)
    return 0


COLUMNS = ["method", "stage", "recipe", "images/iter", "bf16 it/s", "bf16 img/s", "bf16 peak GB",
           "bf16 iters", "fp32 it/s", "fp32 img/s", "fp32 peak GB", "fp32 iters",
           "max rel loss diff", "note"]  # fmt: skip


def write(out: Path, rows, ranking, device, args) -> None:
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)"
    with open(out / "recipes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with open(out / "ranking.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(ranking[0]))
        w.writeheader()
        w.writerows(ranking)
    lines = [f"# Full recipes on {name}", "",
             f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; warm-up {args.warmup}, "
             f"up to {args.iters} timed iterations per stage and precision, one batch reused.",
             "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]  # fmt: skip
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    lines += ["", "| " + " | ".join(ranking[0]) + " |", "|" + "---|" * len(ranking[0])]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in ranking]
    (out / "recipes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
