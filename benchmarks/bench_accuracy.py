#!/usr/bin/env python
"""Does DG-Net's Ea beat its IDE baseline at this scale? Both trained for the same wall-clock
budget on the CUHK03 Market layout, evaluated with one protocol.

    python benchmarks/bench_accuracy.py [--minutes 60] [--threads N] [--root DIR]
        [--ide-config configs/teacher_cuhk03_cpu_demo.yml] [--ide-opts KEY VALUE ...]
        [--dgnet-config configs/dgnet_cuhk03_cpu_demo.yml] [--dgnet-opts KEY VALUE ...]
        [--ide-iters N] [--dgnet-iters N] [--reuse-ide] [--output output/bench_accuracy]

1. IDE baseline: ``--ide-config`` (+ ``--ide-opts``) trained for ``--minutes`` into
   ``OUTPUT/ide``. It is also DG-Net's teacher.
2. DG-Net: ``--dgnet-config`` (+ ``--dgnet-opts``) with ``MODEL.TEACHER.WEIGHTS`` =
   ``OUTPUT/ide/model_final.pth`` and ``MODEL.TEACHER.CONFIG`` = ``OUTPUT/ide/config.yaml``
   (the architecture that run trained), trained for ``--minutes`` into ``OUTPUT/dgnet``.
   DG-Net's budget does not count the teacher's training: in all, DG-Net used twice the
   compute of the IDE row.

Fitting a run to the budget (``benchmarks/budget.py``): a probe builds the engine in this
process and times ``--probe-warmup`` + ``--probe-iters`` iterations with no hooks (DG-Net: at
full cost, every loss term computed; the teacher loaded); ``SOLVER.MAX_ITER = floor((budget -
start-up) / median s per iteration)``; then ``SOLVER.STEPS`` (both) and ``LOSS.WARM_ITER`` /
``LOSS.WARM_TEACHER_ITER`` (DG-Net) are multiplied by ``MAX_ITER_new / MAX_ITER_config`` and
rounded, so that LR decays and warm-up starts fall at the same fraction of the run as in the
config (the CPU demo configs of 2026-12-01: LR x0.1 at 5/6 of both runs; DG-Net's code,
cycle and teacher terms start at 1/2). Rates per iteration (``LOSS.WARM_SCALE``) are not
scaled: after its start a ramp takes as many iterations as in the config (the demo's: 40 to
reach the code weights' maximum, 80 the cycle and teacher weights'), a smaller fraction of a
longer run. Periods (``VIS.PERIOD``, DG-Net's quality measures, checkpoints) stay the
config's: their cost is inside the budget. A guard ends a run early, as a completed run, if
its training loop reaches the budget anyway (the table says "cut"). ``--ide-iters`` /
``--dgnet-iters`` set ``MAX_ITER`` without a probe (``--minutes 0``: no guard either).

Each run also gets ``SOLVER.CHECKPOINT_KEEP 2`` (disk) and ``TEST.EVAL_PERIOD 0`` (one
evaluation, at the end); everything else is the config's. The time counted is the training
loop with the config's periodic hooks (logging, checkpoints, DG-Net's sample grids), not the
engine's construction or the final evaluation.

Protocol (both): the engine's final evaluation, ``dgnet_plugin.evaluation.
evaluate_reid_model`` with the config's ``TEST`` node (the demo configs: flip-averaged,
L2-normalised features, cosine distance; DG-Net's query feature is [primary, 0.5 x
fine-grained], ``TEST.ALPHA``), Market-1501 single-query ranking on the layout's query /
gallery: rank-1/5/10, mAP, mINP in %. DG-Net's row is Ea. Reconstruction SSIM: DG-Net's
``GenerationQuality`` measure at the end of training (``metrics.json``
``generation/recon_ssim``: mean SSIM of up to 128 held-out query images to their
self-reconstructions ``G(Es(x), Ea(x))``; beside it a random other image's and a blurred
copy's SSIM, the references of "no information" and "right colours, no detail").

Output: the table on stdout; ``OUTPUT/results.json`` (a list, one entry appended per run of
this script: date, machine, budget, the overrides used and both rows); the two runs' own
folders (config.yaml, log.txt, metrics.json, checkpoints, DG-Net's images/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from budget import (  # noqa: E402
    enter_repo,
    iterations_for,
    last_metrics_record,
    probe_seconds_per_iter,
    scaled_schedule,
    set_threads,
    train_for_budget,
)

METRICS = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")
SSIM_KEYS = ("recon_ssim", "random_image_ssim", "blurred_copy_ssim")
#: The iteration-valued keys scaled with MAX_ITER (absent keys are skipped).
IDE_SCHEDULE_KEYS = ("SOLVER.STEPS",)
DGNET_SCHEDULE_KEYS = ("SOLVER.STEPS", "LOSS.WARM_ITER", "LOSS.WARM_TEACHER_ITER")


def common_opts(args, output_dir: str) -> list:
    opts = ["OUTPUT_DIR", output_dir, "SOLVER.CHECKPOINT_KEEP", 2, "TEST.EVAL_PERIOD", 0]
    if args.root:
        opts += ["DATASETS.ROOT", args.root]
    return opts


def fit_and_train(name: str, args, config: str, opts: list, iters: int, keys) -> dict:
    """Probe (unless ``iters``), scale the schedule, train under the budget; returns the
    run's record."""
    seconds = 60.0 * args.minutes
    probe = startup = None
    if iters <= 0:
        probe_dir = os.path.join(args.output, "probe", name)
        probe, startup = probe_seconds_per_iter(
            config, opts, probe_dir, args.probe_warmup, args.probe_iters
        )
        iters = iterations_for(seconds, probe, startup)
        print(f"{name} probe: {probe:.3f} s/iter, start-up {startup:.1f} s -> MAX_ITER {iters}")
    schedule = scaled_schedule(config, opts, iters, keys)
    print(f"{name} schedule: {schedule}")
    run = train_for_budget(config, [*opts, *schedule], seconds)
    run.update(
        config=config,
        opts=[str(o) for o in opts],
        schedule=[str(o) for o in schedule],
        probe_s_per_iter=probe,
        probe_startup_s=startup,
    )
    return run


def ide_row(run: dict) -> list:
    return _row(f"IDE baseline ({os.path.basename(run['config'])})", run, "")


def dgnet_row(run: dict) -> list:
    ssim = run.get("generation", {}).get("recon_ssim")
    return _row(
        f"DG-Net Ea ({os.path.basename(run['config'])})",
        run,
        "" if ssim is None else f"{ssim:.3f}",
    )


def _row(label: str, run: dict, ssim: str) -> list:
    metrics = next(iter(run["results"].values())) if run["results"] else {}
    done = f"{run['iterations']}" + (f" (cut, of {run['max_iter']})" if run["cut"] else "")
    return [
        label,
        done,
        f"{run['seconds']:.0f}",
        *[f"{metrics[k]:.2f}" if k in metrics else "" for k in METRICS],
        ssim,
    ]


def last_results(path: str) -> list:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return json.load(f)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=60.0, help="training budget of each (0: none)")
    p.add_argument("--root", default="", help="DATASETS.ROOT of both (default: the configs')")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--output", default="output/bench_accuracy")
    p.add_argument("--ide-config", default="configs/teacher_cuhk03_cpu_demo.yml")
    p.add_argument("--dgnet-config", default="configs/dgnet_cuhk03_cpu_demo.yml")
    p.add_argument("--ide-opts", nargs="+", default=[], metavar="KEY VALUE")
    p.add_argument("--dgnet-opts", nargs="+", default=[], metavar="KEY VALUE")
    p.add_argument("--ide-iters", type=int, default=0, help="SOLVER.MAX_ITER (0: fit the budget)")
    p.add_argument("--dgnet-iters", type=int, default=0, help="SOLVER.MAX_ITER (0: fit)")
    p.add_argument("--probe-warmup", type=int, default=2)
    p.add_argument("--probe-iters", type=int, default=5)
    p.add_argument(
        "--reuse-ide",
        action="store_true",
        help="take the IDE row and teacher from this OUTPUT's last results.json entry",
    )
    args = p.parse_args(argv)
    for opt in ("ide_opts", "dgnet_opts"):
        if len(getattr(args, opt)) % 2:
            p.error(f"--{opt.replace('_', '-')} takes KEY VALUE pairs")
    if args.minutes <= 0 and (args.ide_iters <= 0 or args.dgnet_iters <= 0):
        p.error("--minutes 0 needs --ide-iters and --dgnet-iters")
    for name in ("output", "ide_config", "dgnet_config"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if args.root:
        args.root = os.path.abspath(args.root)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    enter_repo()
    set_threads(args.threads)
    started = datetime.datetime.now(datetime.UTC)
    results_path = os.path.join(args.output, "results.json")
    history = last_results(results_path)

    ide_dir = os.path.join(args.output, "ide")
    if args.reuse_ide:
        if not history or not os.path.isfile(os.path.join(ide_dir, "model_final.pth")):
            sys.exit(
                f"--reuse-ide: no earlier run in {results_path} with {ide_dir}/model_final.pth"
            )
        ide = history[-1]["ide"]
        print(f"IDE: reusing the run of {history[-1]['date']}")
    else:
        opts = [*common_opts(args, ide_dir), *args.ide_opts]
        ide = fit_and_train("ide", args, args.ide_config, opts, args.ide_iters, IDE_SCHEDULE_KEYS)

    dgnet_dir = os.path.join(args.output, "dgnet")
    opts = [
        *common_opts(args, dgnet_dir),
        "MODEL.TEACHER.WEIGHTS",
        os.path.join(ide_dir, "model_final.pth"),
        "MODEL.TEACHER.CONFIG",
        os.path.join(ide_dir, "config.yaml"),
        *args.dgnet_opts,
    ]
    dgnet = fit_and_train(
        "dgnet", args, args.dgnet_config, opts, args.dgnet_iters, DGNET_SCHEDULE_KEYS
    )
    record = last_metrics_record(dgnet_dir, "generation/recon_ssim")
    dgnet["generation"] = {
        k: record[f"generation/{k}"] for k in SSIM_KEYS if f"generation/{k}" in record
    }

    threads = torch.get_num_threads()
    entry = {
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {threads} torch threads",
        "torch": torch.__version__,
        "minutes_each": args.minutes,
        "ide": ide,
        "dgnet": dgnet,
    }
    os.makedirs(args.output, exist_ok=True)
    with open(results_path, "w") as f:
        json.dump([*history, entry], f, indent=1, default=str)

    print(
        f"\nSame budget: {args.minutes:g} min of training each ({entry['machine']}, torch "
        f"{torch.__version__}); protocol: the engines' final evaluation (evaluate_reid_model, "
        "the configs' TEST). DG-Net's teacher is the IDE row's model (its training time not "
        "counted in DG-Net's)."
    )
    headers = ["method", "iterations", "train s", *METRICS, "recon SSIM"]
    print(tabulate([ide_row(ide), dgnet_row(dgnet)], headers=headers, tablefmt="pipe"))
    gen = dgnet["generation"]
    if gen:
        print(
            "Reconstruction SSIM references (same images): a random other image "
            f"{gen.get('random_image_ssim', float('nan')):.3f}, a blurred copy "
            f"{gen.get('blurred_copy_ssim', float('nan')):.3f}"
        )
    print(f"Results appended to {results_path}")
    return entry


if __name__ == "__main__":
    main()
