#!/usr/bin/env python
"""Speed and memory of one DG-Net training iteration: dgnet_plugin's step vs a plain reference.

One iteration is what ``DGNetEngine.run_step`` does: encode both streams with Ea and Es,
decode every image the losses need, update D (LSGAN + real-image gradient regulariser), then
update G and Ea on the weighted sum of every loss term. The iteration index is set past the
warm-up, so every term is on (code reconstruction, cycle, teacher KL, fine-grained), and the
IDE teacher (the config's ``MODEL.TEACHER.CONFIG``) scores the generated images as in
training. All weights are random (no download): timing does not depend on them.

Two variants, on the same device:

* ``dgnet_plugin``: the engine as configured (CUDA: ``SOLVER.AMP`` autocast, channels_last,
  cudnn.benchmark, fused optimisers, ``MODEL.COMPILE`` with ``--compile``; CPU: float32 with
  fused optimisers), frozen networks run by ``frozen_forward`` (no copies).
* ``reference``: a straightforward step of the same algorithm: float32, no channels_last, no
  compile, cudnn.benchmark off, torch's default optimiser implementation, and Ea deep-copied
  every iteration to score the generated images (``copy.deepcopy`` in eval mode with training
  batch norm, as the official code does) instead of ``frozen_forward``; Ea run once per group
  of images, as the official code does (``MODEL.EA_FUSED_FORWARD False``).

``--ea-forward grouped|fused`` sets ``MODEL.EA_FUSED_FORWARD`` of the dgnet_plugin variant
(default: the config's, grouped = the official per-group batch-norm statistics); run it once
with each to measure what the fused Ea forward gains.

Data: synthetic random image batches, made once on the host (pinned on CUDA) and copied to the
device every iteration; image decoding and augmentation are not timed. Images/s counts the
real images of one iteration: 2 streams x (image + positive) x ``SOLVER.IMS_PER_BATCH``.

Time: both variants live in one process and their iterations alternate (after ``--warmup``
each), so both see the same load of a shared machine; seconds per iteration is the median
over ``--iters`` (each iteration synchronised). "CPU s / iter" is the median process CPU time
(user + system, all threads); ``--threads 1`` steadies CPU figures on a shared machine (no
thread waits for a descheduled one). Peak memory is taken first, each variant alone in the
process, over one iteration (on CUDA the second, after cudnn autotuning and compilation):
``torch.cuda.max_memory_allocated`` on CUDA; on CPU the peak resident set of the process
(reset through ``/proc/self/clear_refs``; it also counts torch itself).

Configs: ``official`` (configs/dgnet_r50.yml: 256x128, ResNet-50 Ea and teacher, batch 8 + 8
with positives, 751 identities), ``cpu`` (configs/dgnet_cuhk03_cpu_demo.yml: 64x32,
MobileNetV2, batch 4 + 4, 767 identities), ``tiny`` (the cpu config at 32x16 with batch 2 + 2,
a narrower G, a 2-scale narrower D, 16 identities: a smoke test).

    python benchmarks/bench_train_step.py [--config official cpu] [--device auto|cpu|cuda]
        [--iters 5] [--warmup 1] [--amp bf16|fp16|off] [--compile] [--threads N] [--profile]
        [--ea-forward grouped|fused]

``--profile`` runs the dgnet_plugin variant of the first config under ``torch.profiler`` and
prints the top operators and the share of the step spent outside the networks' own compute.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import math
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from tabulate import tabulate
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dgnet_plugin.config import load_cfg_file  # noqa: E402
from dgnet_plugin.engine.optim import build_adam, build_reid_optimizer  # noqa: E402
from dgnet_plugin.methods.dgnet import DGNetEngine  # noqa: E402
from dgnet_plugin.methods.dgnet.schedule import dgnet_loss_weights  # noqa: E402
from dgnet_plugin.modeling import build_model  # noqa: E402
from dgnet_plugin.modeling.frozen import frozen_forward  # noqa: E402

CONFIGS = {
    "official": dict(file="configs/dgnet_r50.yml", ids=751, opts=[]),
    "cpu": dict(file="configs/dgnet_cuhk03_cpu_demo.yml", ids=767, opts=[]),
    "tiny": dict(
        file="configs/dgnet_cuhk03_cpu_demo.yml",
        ids=16,
        opts=["SOLVER.IMS_PER_BATCH", "2", "MODEL.GEN.DIM", "4", "MODEL.GEN.MLP_DIM", "32"]
        + ["MODEL.DIS.DIM", "8", "MODEL.DIS.N_RES", "1", "MODEL.DIS.NUM_SCALES", "2"]
        + ["INPUT.SIZE_TRAIN", "(32, 16)"],
    ),
}
REFERENCE_OPTS = ["SOLVER.AMP", "off", "MODEL.CHANNELS_LAST", "False", "MODEL.COMPILE", "False"]
REFERENCE_OPTS += ["CUDNN_BENCHMARK", "False", "MODEL.EA_FUSED_FORWARD", "False"]
EA_FORWARD_OPTS = {
    "grouped": ["MODEL.EA_FUSED_FORWARD", "False"],
    "fused": ["MODEL.EA_FUSED_FORWARD", "True"],
}


# ----------------------------------------------------------------------------- setup
def build_cfg(name: str, device: str, out_dir: str, extra: list[str]):
    spec = CONFIGS[name]
    opts = [
        *("MODEL.DEVICE", device, "MODEL.BACKBONE.PRETRAIN", "False", "OUTPUT_DIR", out_dir),
        *("DATASETS.TESTS", "()", "DATALOADER.NUM_WORKERS", "0"),
        *spec["opts"],
        *extra,
    ]
    return load_cfg_file(str(REPO / spec["file"]), opts)


def all_terms_on_iteration(cfg) -> int:
    """The first iteration at which every warm-up ramp has reached its maximum."""
    c = cfg.LOSS
    ramp = max(c.RECON_CODE_MAX, c.CYCLE_MAX, c.TEACHER_MAX) / c.WARM_SCALE
    it = max(c.WARM_ITER, c.WARM_TEACHER_ITER) + math.ceil(ramp) + 1
    off = [k for k, w in dgnet_loss_weights(c, it).items() if w <= 0]
    if off:
        raise RuntimeError(f"loss terms still off at iteration {it}: {off}")
    return it


def build_teacher(cfg, num_classes: int, device: torch.device) -> nn.Module:
    """The config's IDE teacher with random weights, frozen, as ``load_teacher`` leaves it."""
    tcfg = load_cfg_file(str(REPO / cfg.MODEL.TEACHER.CONFIG), ["MODEL.BACKBONE.PRETRAIN", "False"])
    teacher = build_model(tcfg, num_classes).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class SyntheticStream:
    """Endless DG-Net batches of random images (a few made once, then cycled)."""

    def __init__(self, cfg, num_classes: int, pin: bool, seed: int, n_batches: int = 2):
        g = torch.Generator().manual_seed(seed)
        b, (h, w) = cfg.SOLVER.IMS_PER_BATCH, cfg.INPUT.SIZE_TRAIN
        self.batches = []
        for _ in range(n_batches):
            batch = {k: torch.randn(b, 3, h, w, generator=g) for k in ("img", "pos")}
            batch["img_erased"], batch["pos_erased"] = batch["img"].clone(), batch["pos"].clone()
            batch["pid"] = torch.randint(0, num_classes, (b,), generator=g)
            if pin:
                batch = {k: v.pin_memory() for k, v in batch.items()}
            self.batches.append(batch)
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        return self.batches[self.i % len(self.batches)]


def build_engine(cfg, num_classes: int, reference: bool) -> DGNetEngine:
    """A DG-Net engine on synthetic data (no dataset is read: the training-set scan is
    replaced by a list of placeholder items and the loaders by :class:`SyntheticStream`)."""
    items = [(f"synthetic/{i:06d}.jpg", i % num_classes, 0, 0) for i in range(2 * num_classes)]
    with mock.patch(
        "dgnet_plugin.engine.defaults.load_train_set", return_value=(items, num_classes)
    ):
        engine = DGNetEngine(cfg)
    if reference:  # torch's default optimiser implementation, as built by torchreid
        m, s = engine.model, cfg.SOLVER
        heads = ["classifier", "classifier_fine"]
        engine.optimizers["model"] = build_reid_optimizer(cfg, m.reid, heads)
        engine.optimizers["gen"] = build_adam(m.gen, s.GEN)
        engine.optimizers["dis"] = build_adam(m.dis, s.DIS)
    engine.set_teacher(build_teacher(cfg, num_classes, engine.device))
    pin = engine.device.type == "cuda"
    engine.synthetic = tuple(SyntheticStream(cfg, num_classes, pin, seed) for seed in (1, 2))
    engine.data = zip(*engine.synthetic, strict=False)
    engine.model.train()
    return engine


def official_frozen_forward(ea: nn.Module):
    """``frozen_forward`` as the official step does it for Ea: a ``copy.deepcopy`` every
    call, in eval mode with batch norm in training mode (its gradients are computed, then
    thrown away with the copy). Other frozen networks keep ``frozen_forward``."""

    def forward(module, *args, **kwargs):
        if module is not ea:
            return frozen_forward(module, *args, **kwargs)
        dup = copy.deepcopy(module).eval()
        for m in dup.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
        return dup(*args, **kwargs)

    return forward


# ----------------------------------------------------------------------------- measuring
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # glibc: give freed heap memory back, so the next peak is not inherited
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:  # Linux: "5" resets the peak resident set size (VmHWM) of the process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def step_function(engine: DGNetEngine, reference: bool):
    """``run_step`` of the variant (the reference with Ea deep-copied for its frozen calls)."""
    if not reference:
        return engine.run_step
    frozen = official_frozen_forward(engine.model.reid)

    def step(it):
        with mock.patch("dgnet_plugin.methods.dgnet.meta_arch.frozen_forward", frozen):
            return engine.run_step(it)

    return step


def describe(engine: DGNetEngine, reference: bool) -> str:
    if reference:
        return "reference: fp32, deepcopy(Ea) per iteration, grouped Ea"
    parts = [engine.amp.describe()]
    parts.append("fused Ea" if engine.model.ea_fused_forward else "grouped Ea")
    sp = engine.speed
    parts += [n for n, on in (("channels_last", sp.channels_last), ("compile", sp.compile)) if on]
    impl = next(iter(engine.optimizers.values())).defaults
    parts.append("fused optim" if impl.get("fused") else "foreach optim")
    return "dgnet_plugin: " + ", ".join(parts)


VARIANTS = (True, False)  # reference, dgnet_plugin
#: Targets of the speed issue for the ``official`` config on one H100 (CUDA only).
TARGETS = {"s_per_iter": 0.25, "peak_gb": 10.0, "speed_up": 3.0}


def target_verdict(name: str, device: str, sec: float, peak_gb: float, speed_up: float) -> str:
    """One line comparing the dgnet_plugin variant with :data:`TARGETS` (``official`` on CUDA;
    elsewhere the targets do not apply and the line says so)."""
    if name != "official" or not device.startswith("cuda"):
        return f"{name} on {device}: the targets are for the official config on an H100 (CUDA)"
    gpu = torch.cuda.get_device_name(torch.device(device))
    checks = [
        (f"{sec:.3f} s/iter", sec <= TARGETS["s_per_iter"], f"<= {TARGETS['s_per_iter']}"),
        (f"peak {peak_gb:.2f} GB", peak_gb <= TARGETS["peak_gb"], f"<= {TARGETS['peak_gb']:g}"),
        (f"{speed_up:.2f}x the reference", speed_up >= TARGETS["speed_up"], ">= 3x"),
    ]
    parts = [f"{what} (target {t}: {'met' if ok else 'NOT met'})" for what, ok, t in checks]
    return f"official on {gpu} (targets set for an H100): " + "; ".join(parts)


def run_config(name: str, args, rows: list) -> str:
    """1. Peak memory: each variant alone in the process (on CUDA after one untracked
    iteration: cudnn autotuning and compilation). 2. Time: both variants built again and
    their iterations interleaved, so that both see the same load on a shared machine.
    Appends one table row per variant to ``rows``; returns :func:`target_verdict`."""
    cfg_extra = ["SOLVER.AMP", args.amp] if args.amp else []
    cfg_extra += ["MODEL.COMPILE", "True"] if args.compile else []
    ours_extra = EA_FORWARD_OPTS.get(getattr(args, "ea_forward", None), [])
    ids = CONFIGS[name]["ids"]

    def make(reference: bool) -> DGNetEngine:
        torch.manual_seed(0)
        return build_engine(cfgs[reference], ids, reference)

    with tempfile.TemporaryDirectory() as out:
        cfgs = {
            ref: build_cfg(
                name, args.device, out, cfg_extra + (REFERENCE_OPTS if ref else ours_extra)
            )
            for ref in VARIANTS
        }
        it = all_terms_on_iteration(cfgs[False])
        peaks = {}
        for ref in VARIANTS:
            engine = make(ref)
            step, dev = step_function(engine, ref), engine.device
            random.seed(0)
            if dev.type == "cuda":
                step(it)
                sync(dev)
            reset_peak(dev)
            step(it)
            sync(dev)
            peaks[ref] = peak_memory_gb(dev)
            del engine, step
            reset_peak(dev)

        engines = {ref: make(ref) for ref in VARIANTS}
        steps = {ref: step_function(engines[ref], ref) for ref in VARIANTS}
        times = {ref: [] for ref in VARIANTS}
        cpu_times = {ref: [] for ref in VARIANTS}
        finite = dict.fromkeys(VARIANTS, True)
        random.seed(0)
        for _ in range(args.warmup):
            for ref in VARIANTS:
                steps[ref](it)
        for _ in range(args.iters):
            for ref in VARIANTS:
                sync(dev)
                t0, c0 = time.perf_counter(), time.process_time()
                losses = steps[ref](it)
                sync(dev)
                times[ref].append(time.perf_counter() - t0)
                cpu_times[ref].append(time.process_time() - c0)
                finite[ref] &= all(bool(torch.isfinite(v).all()) for v in losses.values())
        images = 4 * cfgs[False].SOLVER.IMS_PER_BATCH
        base = statistics.median(times[True])
        for ref in VARIANTS:
            sec = statistics.median(times[ref])
            rows.append(
                [
                    name,
                    str(engines[ref].device),
                    describe(engines[ref], ref),
                    f"{sec:.3f}",
                    f"{images / sec:.3g}",
                    f"{peaks[ref]:.2f}",
                    f"{base / sec:.2f}x",
                    f"{statistics.median(cpu_times[ref]):.3f}",
                    "yes" if finite[ref] else "NO",
                ]
            )
        ours = statistics.median(times[False])
        return target_verdict(name, str(dev), ours, peaks[False], base / ours)


# ----------------------------------------------------------------------------- profiling
NETWORKS = "net::"


def add_network_ranges(engine: DGNetEngine) -> None:
    """Profiler ranges ``net::<name>`` around every forward call of the networks (Ea, Es, G's
    decoder and AdaIN MLPs, D, teacher), frozen calls included."""
    m = engine.model
    nets = {"Ea": m.reid, "Es": m.gen.encoder, "G": m.gen.decoder, "D": m.dis}
    nets.update({f"mlp{i}": mlp for i, mlp in enumerate([*m.gen.mlp_w, *m.gen.mlp_b])})
    if engine.teacher is not None:
        nets["teacher"] = engine.teacher
    for name, module in nets.items():
        stack = []

        def pre(mod, args, kwargs, name=name, stack=stack):
            r = torch.profiler.record_function(NETWORKS + name)
            r.__enter__()
            stack.append(r)

        def post(mod, args, kwargs, out, stack=stack):
            stack.pop().__exit__(None, None, None)
            return out

        module.register_forward_pre_hook(pre, with_kwargs=True)
        module.register_forward_hook(post, with_kwargs=True)


class Labelled:
    """An iterator whose ``next`` runs inside a profiler range."""

    def __init__(self, it, label: str):
        self.it, self.label = it, label

    def __iter__(self):
        return self

    def __next__(self):
        with torch.profiler.record_function(self.label):
            return next(self.it)


def breakdown(events) -> dict[str, float]:
    """Microseconds per category over every ``bench::step`` range.

    network: forward ranges of the networks, plus the backward nodes created inside them
    (matched by autograd sequence number) and the gradient accumulation into parameters;
    optimizer: ``Optimizer.step`` / ``zero_grad``; data: batch fetch and host-to-device copy;
    losses & glue ops: every other operator (loss math, concatenations, frozen-forward buffer
    copies, ...); python & framework: time in the step not inside any operator.
    """
    in_net = set()
    for e in events:
        if e.sequence_nr >= 0 and not e.name.startswith("autograd::"):
            p = e.cpu_parent
            while p is not None and not p.name.startswith(NETWORKS):
                p = p.cpu_parent
            if p is not None:
                in_net.add(e.sequence_nr)
    totals = dict.fromkeys(["network", "optimizer", "data", "losses & glue ops"], 0.0)
    totals["python & framework"] = 0.0
    step_total = 0.0

    def visit(e):
        n = e.name
        if n.startswith(NETWORKS):
            totals["network"] += e.cpu_time_total
        elif n.startswith("autograd::engine::evaluate_function:"):
            node = n.split(":", 4)[-1].strip()
            net = e.sequence_nr in in_net or node == "torch::autograd::AccumulateGrad"
            totals["network" if net else "losses & glue ops"] += e.cpu_time_total
        elif n.startswith("Optimizer."):
            totals["optimizer"] += e.cpu_time_total
        elif n.startswith("bench::data"):
            totals["data"] += e.cpu_time_total
        else:  # an operator outside the networks: its own time, then look inside
            totals["losses & glue ops"] += e.self_cpu_time_total
            for c in e.cpu_children:
                visit(c)

    for e in events:
        if e.name == "bench::step":
            step_total += e.cpu_time_total
            totals["python & framework"] += e.self_cpu_time_total
            for c in e.cpu_children:
                visit(c)
    totals["step"] = step_total
    return totals


def profile(name: str, args) -> None:
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    spec = CONFIGS[name]
    cfg_extra = ["SOLVER.AMP", args.amp] if args.amp else []
    cfg_extra += EA_FORWARD_OPTS.get(getattr(args, "ea_forward", None), [])
    with tempfile.TemporaryDirectory() as out:
        cfg = build_cfg(name, args.device, out, cfg_extra)
        it = all_terms_on_iteration(cfg)
        torch.manual_seed(0)
        engine = build_engine(cfg, spec["ids"], reference=False)
        add_network_ranges(engine)
        engine.synthetic = tuple(Labelled(s, "bench::data") for s in engine.synthetic)
        engine.data = zip(*engine.synthetic, strict=False)
        to_device = engine.to_device

        def labelled_to_device(batch):
            with record_function("bench::data"):
                return to_device(batch)

        engine.to_device = labelled_to_device
        random.seed(0)
        for _ in range(args.warmup):
            engine.run_step(it)
        activities = [ProfilerActivity.CPU]
        if engine.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        with torch_profile(activities=activities) as prof:
            for _ in range(args.iters):
                with record_function("bench::step"):
                    engine.run_step(it)
            sync(engine.device)
    sort = "self_cuda_time_total" if engine.device.type == "cuda" else "self_cpu_time_total"
    print(f"\nProfile of the dgnet_plugin step, config '{name}', {args.iters} iterations:")
    print(prof.key_averages().table(sort_by=sort, row_limit=args.top))
    if engine.device.type == "cuda":
        print("(host-side shares below are not meaningful on CUDA: kernels run asynchronously)")
    t = breakdown(prof.events())
    step = t.pop("step")
    rows = [[k, f"{v / 1e3 / args.iters:.1f}", f"{100 * v / step:.1f}"] for k, v in t.items()]
    rows.append(["step (total)", f"{step / 1e3 / args.iters:.1f}", "100.0"])
    print(tabulate(rows, headers=["category", "ms / iteration", "% of step"], tablefmt="github"))
    worst = max((k for k in t if k != "network"), key=t.get)
    share = 100 * t[worst] / step
    verdict = "met" if share <= 10 else "NOT met"
    print(f"largest share outside the networks: {worst} {share:.1f}% (target <= 10%: {verdict})")


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", nargs="+", default=["official", "cpu"], choices=list(CONFIGS))
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--iters", type=int, default=5, help="timed iterations per variant")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations per variant")
    ap.add_argument("--amp", choices=["bf16", "fp16", "off"], help="SOLVER.AMP (CUDA only)")
    ap.add_argument("--compile", action="store_true", help="MODEL.COMPILE True (CUDA only)")
    ap.add_argument("--profile", action="store_true", help="profile the first config instead")
    ap.add_argument("--top", type=int, default=15, help="operators listed by --profile")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument(
        "--ea-forward",
        choices=list(EA_FORWARD_OPTS),
        help="MODEL.EA_FUSED_FORWARD of the dgnet_plugin variant (default: the config's)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"device: {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
        + f", torch {torch.__version__}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} "
        f"threads; synthetic batches, random weights, every loss term on; "
        f"{args.warmup} warm-up + {args.iters} timed iterations per variant"
    )
    if args.profile:
        return profile(args.config[0], args)
    rows = []
    verdicts = [run_config(name, args, rows) for name in args.config]
    headers = ["config", "device", "variant", "s / iter", "images / s", "peak GB", "speed-up"]
    headers += ["CPU s / iter", "finite"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()
