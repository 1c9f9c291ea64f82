"""Compute and memory estimates of each method's full recipe, on the meta device (no GPU, no
arithmetic: it runs on a CPU in seconds per stage).

For each training stage of a recipe (``configs/<m>_r50*.yml``, ``configs/teacher_r50.yml``
for DG-Net's teacher), the stage's engine is built with ``MODEL.DEVICE meta`` at the recipe's
input size, backbone and batch (images: real CUHK03 crops of ``../shared/data`` resized by the
recipe's transforms, which sets only the batch content; the classifier has CUHK03's
identities), and two iterations run under ``torch.utils.flop_counter.FlopCounterMode``:

* FLOPs of one iteration split by update phase: the FLOPs counted since the previous
  optimiser step are given to the phase whose optimiser steps (forward + backward; the
  optimiser's own element-wise work is not counted);
* parameter, gradient (trainable parameters) and optimiser-state memory (float32);
* an activation estimate: the bytes of the tensors autograd saves for the backward during
  one iteration (a peak upper bound; tensors shared between saves are counted twice);
* the H100 time per iteration: max(FLOPs / (peak x UTIL), activation bytes x 2 / HBM) with
  the dense bf16 peak 989 TFLOP/s for bf16 recipes and the dense TF32 peak 494.5 TFLOP/s for
  float32 ones (convolutions use TF32 by default), UTIL = --util (0.4), HBM 3.35 TB/s;
* GPU-hours of the stage: that time x ``SOLVER.MAX_ITER`` of the stage's config.

Generation stages (forward passes over the training set) are not included. Estimates, not
measurements.

    python benchmarks/bench_flops.py                # every method (a few minutes on 2 cores)
    python benchmarks/bench_flops.py --quick        # the IDE teacher only (CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("DGNET_SHARED_DATA", REPO.parent / "shared" / "data"))
BF16_PEAK, TF32_PEAK, HBM = 989e12, 494.5e12, 3.35e12

#: (method, stage, recipe, engine, meta-architecture or "", extra options)
STAGES = [
    ("ide", "re-ID", "teacher_r50.yml", "", "", ()),
    ("dgnet", "teacher", "teacher_r50.yml", "", "", ()),
    ("dgnet", "DG-Net", "dgnet_r50.yml", "", "",
     ("LOSS.WARM_ITER", "0", "LOSS.WARM_TEACHER_ITER", "0")),
    ("camstyle", "CycleGAN (1 of 15 pairs)", "camstyle_r50.yml", "CamStyleCycleGANEngine",
     "CycleGAN", ("CAMSTYLE.PAIR", "(1, 2)")),
    ("camstyle", "re-ID", "camstyle_r50.yml", "", "", ("GENERATED.ENABLED", "False")),
    ("spgan", "SPGAN", "spgan_r50.yml", "SPGANTranslatorEngine", "SPGAN", ()),
    ("spgan", "re-ID", "spgan_r50.yml", "", "", ("GENERATED.ENABLED", "False")),
    ("ptgan", "PTGAN", "ptgan_r50.yml", "PTGANTranslatorEngine", "CycleGAN", ()),
    ("ptgan", "re-ID", "ptgan_r50.yml", "", "", ("GENERATED.ENABLED", "False")),
    ("lsro", "DCGAN", "lsro_r50.yml", "LSRODCGANEngine", "DCGAN", ()),
    ("lsro", "re-ID", "lsro_r50.yml", "", "", ("GENERATED.ENABLED", "False")),
    ("pngan", "pose GAN", "pngan_r50.yml", "PNGANGeneratorEngine", "PoseGAN", ()),
    ("pngan", "re-ID", "pngan_r50.yml", "", "", ("GENERATED.ENABLED", "False")),
]  # fmt: skip


def _market(root: Path, skip: int = 0) -> Path:
    src = DATA / "cuhk03_market_layout"
    for split, n in (("bounding_box_train", 24), ("query", 2), ("bounding_box_test", 2)):
        ids = sorted({p.name[:4] for p in (src / split).iterdir()})[skip : skip + n]
        (root / split).mkdir(parents=True, exist_ok=True)
        for p in (src / split).iterdir():
            if p.name[:4] in ids:
                (root / split / p.name).symlink_to(p)
    return root


def build(recipe, engine_name, arch, extra, tmp: Path, out: Path):
    from dgnet_plugin.config import load_cfg_file
    from dgnet_plugin.engine import build_engine
    from dgnet_plugin.offline_augmentation.config import gan_stage_config

    data = [
        "DATASETS.NAMES", "('market_layout',)", "DATASETS.ROOT", str(tmp / "source"),
        "DATASETS.TESTS", "()", "MODEL.DEVICE", "meta", "MODEL.BACKBONE.PRETRAIN", "False",
        "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(out),
    ]  # fmt: skip
    cfg = load_cfg_file(str(REPO / "configs" / recipe), data + list(extra), freeze=False)
    if "DOMAINS" in cfg:
        data += ["DOMAINS.TARGET", f"('market_layout@{tmp / 'target'}',)", "DOMAINS.SPLIT.ROOT", ""]
    if "MASKS" in cfg:
        data += ["MASKS.FOLDER", str(DATA / "cuhk03_pose_mask" / "cuhk03_masks")]
    if "POSE" in cfg:
        data += ["POSE.SOURCE", str(DATA / "cuhk03_pose_mask" / "cuhk03_poses.csv")]
    if engine_name:
        cfg = load_cfg_file(str(REPO / "configs" / recipe), data + list(extra))
        stage = gan_stage_config(cfg, (12936, 12936))
        stage.update({"ENGINE.NAME": engine_name, "MODEL.META_ARCHITECTURE": arch})
        data += [str(x) for kv in stage.items() for x in kv]
    cfg = load_cfg_file(str(REPO / "configs" / recipe), data + list(extra))
    engine = build_engine(cfg)
    if hasattr(engine, "set_teacher"):
        from dgnet_plugin.modeling import build_model

        t = load_cfg_file(
            str(REPO / "configs" / "teacher_r50.yml"), ["MODEL.BACKBONE.PRETRAIN", "False"]
        )
        engine.set_teacher(build_model(t, engine.num_classes).eval().to("meta"))
    return engine


def measure(engine) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    params = list(engine.model.parameters())
    engine.run_step(0)  # optimiser states exist after the first step
    phases: dict[str, int] = {}
    counter = FlopCounterMode(display=False)
    last = [0]

    def post(opt, *_):
        name = next(n for n, o in engine.optimizers.items() if o is opt)
        total = counter.get_total_flops()
        phases[name] = phases.get(name, 0) + total - last[0]
        last[0] = total

    hooks = [o.register_step_post_hook(post) for o in engine.optimizers.values()]
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        engine.run_step(1)
    for h in hooks:
        h.remove()
    state = [v for o in engine.optimizers.values() for s in o.state.values() for v in s.values()
             if torch.is_tensor(v)]  # fmt: skip
    return {
        "phases": phases, "flops": counter.get_total_flops(), "params": nbytes(params),
        "grads": nbytes(p for p in params if p.requires_grad), "optim": nbytes(state),
        "acts": saved[0], "max_iter": engine.cfg.SOLVER.MAX_ITER,
        "bf16": engine.cfg.SOLVER.AMP == "bf16",
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the IDE teacher only")
    ap.add_argument("--util", type=float, default=0.4, help="fraction of the peak reached")
    ap.add_argument("--methods", nargs="*", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    stages = [s for s in STAGES if (s[0] == "ide" if args.quick else
                                    args.methods is None or s[0] in args.methods)]  # fmt: skip
    rows = ["| method | stage | recipe | GFLOP / iter (by phase) | params / grads / optim MB | "
            "activations MB | H100 ms / iter | iterations | GPU-h |",
            "|---|" + "---|" * 8]  # fmt: skip
    total: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _market(tmp / "source"), _market(tmp / "target", skip=24)
        for method, stage, recipe, eng, arch, extra in stages:
            out = tmp / f"{method}_{len(rows)}"
            m = measure(build(recipe, eng, arch, extra, tmp, out))
            peak = BF16_PEAK if m["bf16"] else TF32_PEAK
            sec = max(m["flops"] / (peak * args.util), 2 * m["acts"] / HBM)
            hours = sec * m["max_iter"] / 3600
            total[method] = total.get(method, 0.0) + hours
            by = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in m["phases"].items())
            mb = lambda b: f"{b / 2**20:.0f}"  # noqa: E731
            rows.append(
                f"| {method} | {stage} | {recipe} ({'bf16' if m['bf16'] else 'fp32'}) | "
                f"{m['flops'] / 1e9:.0f} ({by}) | {mb(m['params'])} / {mb(m['grads'])} / "
                f"{mb(m['optim'])} | {mb(m['acts'])} | {sec * 1e3:.1f} | {m['max_iter']} | "
                f"{hours:.2f} |"
            )
            print(rows[-1], flush=True)
    print("\nEstimates (meta device, FlopCounterMode; H100 at "
          f"{args.util:.0%} of the dense peak), training stages only:")  # fmt: skip
    print("\n".join(rows))
    for method, hours in total.items():
        print(f"{method}: {hours:.2f} GPU-hours of training (generation not included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
