"""Compute and memory estimates of each method's full recipe, on the meta device (no GPU, no
arithmetic: it runs on a CPU in seconds per stage).

Every stage of each recipe (``configs/<m>_r50*.yml``, the SYSU-MM01 recipes for D2RL and
AGW, ``configs/teacher_r50.yml`` for DG-Net's teacher): DG-Net's teacher, the translators
(CamStyle: one CycleGAN per camera pair, 15 on Market-1501), the generation, the re-ID stage
and the real-only baseline of the offline methods. A training stage's engine is built with
``MODEL.DEVICE meta`` at the recipe's input size, backbone and batch (images: real CUHK03
crops of ``../shared/data`` resized by the recipe's transforms, which sets only the batch
content; the classifier has the subset's identities; the offline re-ID stage reads a stand-in
generated set), and two iterations run, the second under ``meta_device.FlopCount`` (the formulas of
``torch.utils.flop_counter``):

* FLOPs of one iteration split by update phase: the FLOPs counted since the previous
  optimiser step are given to the phase whose optimiser steps (forward + backward; the
  optimiser's own element-wise work is not counted);
* parameter, gradient (trainable parameters) and optimiser-state memory (float32);
* an activation estimate: the bytes of the tensors autograd saves for the backward during
  one iteration (float32 on ``meta``; a peak upper bound: tensors shared between saves are
  counted twice);
* the H100 time per iteration: max(FLOPs / (peak x UTIL), activation bytes x 2 / HBM) with
  the dense bf16 peak 989 TFLOP/s for bf16 recipes and the dense TF32 peak 494.5 TFLOP/s for
  float32 ones (convolutions use TF32 by default), UTIL = --util (0.4), HBM 3.35 TB/s;
* GPU-hours of the stage: that time x its iterations.

A generation stage counts the generator's forward FLOPs for one image (no gradients) times
the images the recipe generates. Iterations and image counts come from the recipe and
Market-1501's sizes (:data:`MARKET`); :func:`iterations` says which are estimated.
Estimates, not measurements.

    python benchmarks/bench_flops.py                # every method (a few minutes on 2 cores)
    python benchmarks/bench_flops.py --quick        # the IDE recipe only (CI)
    python benchmarks/bench_flops.py --methods dgnet lsro
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
sys.path.insert(0, str(REPO / "benchmarks"))
from meta_device import FlopCount, MetaScalars, meta_autocast  # noqa: E402

DATA = Path(os.environ.get("DGNET_SHARED_DATA", REPO.parent / "shared" / "data"))
BF16_PEAK, TF32_PEAK, HBM = 989e12, 494.5e12, 3.35e12
#: Market-1501's training set (Zheng et al., ICCV 2015): images, identities and the images of
#: each of its 6 cameras (bounding_box_train); DukeMTMC-reID's training images (SPGAN's and
#: PTGAN's target domain)
MARKET = {"images": 12936, "ids": 751, "per_camera": (2017, 1709, 2707, 920, 2338, 3245)}
DUKE_IMAGES = 16522

#: (method, stage, recipe, kind, extra options); kinds: train (an engine of the recipe),
#: gan (the translator / GAN stage: engine, meta-architecture), generate (the previous gan
#: row's generator, forward only), reid (real + generated images), baseline (real only)
STAGES = [
    ("ide", "re-ID", "teacher_r50.yml", "train", ()),
    ("dgnet", "teacher (IDE)", "teacher_r50.yml", "train", ()),
    ("dgnet", "DG-Net", "dgnet_r50.yml", "train",
     ("LOSS.WARM_ITER", "0", "LOSS.WARM_TEACHER_ITER", "0")),
    ("d2rl", "D2RL", "d2rl_r50_sysu.yml", "train",  # the joint phase (every network)
     ("MODEL.D2RL.WARMUP_GEN_ITER", "0", "MODEL.D2RL.WARMUP_REID_ITER", "0")),
    ("agw", "AGW", "agw_r50_sysu.yml", "train", ()),
    ("camstyle", "CycleGAN x 15 camera pairs", "camstyle_r50.yml", "gan",
     ("ENGINE.NAME", "CamStyleCycleGANEngine", "MODEL.META_ARCHITECTURE", "CycleGAN",
      "CAMSTYLE.PAIR", "(1, 2)")),
    ("camstyle", "generation", "camstyle_r50.yml", "generate", ()),
    ("camstyle", "re-ID (real + generated)", "camstyle_r50.yml", "reid", ()),
    ("camstyle", "baseline (real only)", "camstyle_r50.yml", "baseline", ()),
    ("spgan", "SPGAN", "spgan_r50.yml", "gan",
     ("ENGINE.NAME", "SPGANTranslatorEngine", "MODEL.META_ARCHITECTURE", "SPGAN")),
    ("spgan", "generation", "spgan_r50.yml", "generate", ()),
    ("spgan", "re-ID (generated)", "spgan_r50.yml", "reid", ()),
    ("spgan", "baseline (source only)", "spgan_r50.yml", "baseline", ()),
    ("ptgan", "PTGAN", "ptgan_r50.yml", "gan",
     ("ENGINE.NAME", "PTGANTranslatorEngine", "MODEL.META_ARCHITECTURE", "CycleGAN")),
    ("ptgan", "generation", "ptgan_r50.yml", "generate", ()),
    ("ptgan", "re-ID (generated)", "ptgan_r50.yml", "reid", ()),
    ("ptgan", "baseline (source only)", "ptgan_r50.yml", "baseline", ()),
    ("lsro", "DCGAN", "lsro_r50.yml", "gan",
     ("ENGINE.NAME", "LSRODCGANEngine", "MODEL.META_ARCHITECTURE", "DCGAN")),
    ("lsro", "generation", "lsro_r50.yml", "generate", ()),
    ("lsro", "re-ID (real + generated)", "lsro_r50.yml", "reid", ()),
    ("lsro", "baseline (real only)", "lsro_r50.yml", "baseline", ()),
    ("pngan", "pose GAN", "pngan_r50.yml", "gan",
     ("ENGINE.NAME", "PNGANGeneratorEngine", "MODEL.META_ARCHITECTURE", "PoseGAN")),
    ("pngan", "generation", "pngan_r50.yml", "generate", ()),
    ("pngan", "re-ID (real + generated)", "pngan_r50.yml", "reid", ()),
    ("pngan", "baseline (real only)", "pngan_r50.yml", "baseline", ()),
]  # fmt: skip


def iterations(method: str, kind: str, cfg) -> tuple[int, str]:
    """``(count, where it comes from)`` of a stage: iterations of a training stage (``cfg``:
    the stage's config), images of a generation stage, from the recipe and :data:`MARKET`."""
    from dgnet_plugin.offline_augmentation.config import gan_schedule

    n, ids = MARKET["images"], MARKET["ids"]
    if kind == "generate":
        if method == "camstyle":  # every training image into the 5 other cameras' styles
            return n * (len(MARKET["per_camera"]) - 1), "12,936 x 5 other cameras"
        if method == "lsro":
            return int(cfg.LSRO.NUM_GENERATED), "LSRO.NUM_GENERATED"
        if method == "pngan":
            k = int(cfg.POSE.NUM_CANONICAL)
            return n * k, f"12,936 x {k} canonical poses"
        return n, "each source image once"
    if kind != "gan":
        if method == "lsro" and kind == "baseline" and cfg.LSRO.BASELINE_MAX_ITER:
            return int(cfg.LSRO.BASELINE_MAX_ITER), "LSRO.BASELINE_MAX_ITER"
        return int(cfg.SOLVER.MAX_ITER), "SOLVER.MAX_ITER"
    if method == "camstyle":  # one CycleGAN per camera pair, each its own epochs
        cams = MARKET["per_camera"]
        pairs = [(a, b) for i, a in enumerate(cams) for b in cams[i + 1 :]]
        return sum(gan_schedule(cfg, p)[0] for p in pairs), "GAN.EPOCHS over 15 camera pairs"
    if method in ("spgan", "ptgan"):
        return gan_schedule(cfg, (n, DUKE_IMAGES))[0], "GAN.EPOCHS, Market -> Duke"
    if method == "lsro":
        from dgnet_plugin.methods.lsro.stages import dcgan_iterations

        return dcgan_iterations(n, cfg.GAN.IMS_PER_BATCH, cfg.LSRO.GAN_EPOCHS), "LSRO.GAN_EPOCHS"
    if method == "pngan":  # ordered same-identity pairs: sum of n_i (n_i - 1) over identities
        m = n / ids
        pairs = int(ids * m * (m - 1))
        per_epoch = pairs // cfg.GAN.IMS_PER_BATCH
        return per_epoch * cfg.PNGAN.EPOCHS, "estimated: PNGAN.EPOCHS, equal ids (lower bound)"
    return int(cfg.SOLVER.MAX_ITER), "SOLVER.MAX_ITER"


def _market(root: Path, skip: int = 0, n_train: int = 24) -> Path:
    """A Market-layout folder of links to ``n_train`` training (and 2 test) identities of the
    real CUHK03 crops, from the ``skip``-th identity on."""
    src = DATA / "cuhk03_market_layout"
    for split, n in (("bounding_box_train", n_train), ("query", 2), ("bounding_box_test", 2)):
        ids = sorted({p.name[:4] for p in (src / split).iterdir()})[skip : skip + n]
        (root / split).mkdir(parents=True, exist_ok=True)
        for p in (src / split).iterdir():
            if p.name[:4] in ids:
                (root / split / p.name).symlink_to(p)
    return root


def _generated(tmp: Path) -> Path:
    """A stand-in generated set (grey images, one per training image of ``tmp/source``)."""
    from dgnet_plugin.data.datasets import parse_market_name
    from dgnet_plugin.data.generated import generated_file_name, write_generated_set

    plan = []
    for i, path in enumerate(sorted((tmp / "source" / "bounding_box_train").glob("*.jpg"))):
        pid, cam = parse_market_name(str(path))
        plan.append({"file": generated_file_name(pid, cam, i, "x"), "source": str(path),
                     "source_pid": pid, "source_camid": cam, "target": "x"})  # fmt: skip
    grey = lambda batch: torch.full((len(batch), 3, 64, 32), 0.5)  # noqa: E731
    write_generated_set(str(tmp / "generated"), plan, grey, "stand-in", progress=False)
    return tmp / "generated"


def stage_options(method, recipe, kind, extra, tmp: Path, device: str = "meta") -> list[str]:
    """``KEY VALUE`` options that build the stage on ``device`` from the recipe (data in
    ``tmp``: ``source``, ``target``, ``generated``, ``vi``)."""
    from dgnet_plugin.config import load_cfg_file
    from dgnet_plugin.offline_augmentation.config import gan_stage_config

    data = ["MODEL.DEVICE", device, "MODEL.BACKBONE.PRETRAIN", "False",
            "DATALOADER.NUM_WORKERS", "0", "DATASETS.TESTS", "()"]  # fmt: skip
    if method in ("d2rl", "agw"):  # the VI proxy of the real CUHK03 crops and SYSU samples
        proxy = f"('sysu_mm01@{tmp / 'vi'}/SYSU-MM01-proxy',)"
        data += ["DATASETS.VI_PROXY.SOURCE", str(DATA / "cuhk03_64x128"),
                 "DATASETS.VI_PROXY.SAMPLES", str(DATA / "vi_reid_samples"),
                 "DATASETS.VI_PROXY.ROOT", str(tmp / "vi"), "DATASETS.VI_PROXY.NUM_IDS",
                 "(12, 3)", "DATASETS.NAMES", proxy]  # fmt: skip
        return data + list(extra)
    data += ["DATASETS.NAMES", "('market_layout',)", "DATASETS.ROOT", str(tmp / "source")]
    cfg = load_cfg_file(str(REPO / "configs" / recipe), data, freeze=False)
    if "DOMAINS" in cfg:
        data += ["DOMAINS.TARGET", f"('market_layout@{tmp / 'target'}',)", "DOMAINS.SPLIT.ROOT", ""]
    if "MASKS" in cfg:
        data += ["MASKS.FOLDER", str(DATA / "cuhk03_pose_mask" / "cuhk03_masks")]
    if "POSE" in cfg:
        data += ["POSE.SOURCE", str(DATA / "cuhk03_pose_mask" / "cuhk03_poses.csv")]
    if kind in ("gan", "generate"):
        stage = gan_stage_config(load_cfg_file(str(REPO / "configs" / recipe), data), (1, 1))
        data += [str(x) for kv in stage.items() for x in kv]
    elif kind == "reid":
        data += ["GENERATED.ENABLED", "True", "GENERATED.ROOT", str(tmp / "generated")]
    elif kind == "baseline":
        data += ["GENERATED.ENABLED", "False"]
        if method == "lsro":  # the authors' baseline batch (lsro_baseline_stage)
            c = load_cfg_file(str(REPO / "configs" / recipe), data).LSRO
            if c.BASELINE_BATCH > 0:
                data += ["SOLVER.IMS_PER_BATCH", str(c.BASELINE_BATCH)]
    return data + list(extra)


def build(method, recipe, kind, extra, tmp: Path, out: Path, device: str = "meta", opts=()):
    """The stage's engine on ``device`` (``opts``: more ``KEY VALUE`` options, last)."""
    from dgnet_plugin.config import load_cfg_file
    from dgnet_plugin.engine import build_engine

    opts = [*stage_options(method, recipe, kind, extra, tmp, device), "OUTPUT_DIR", str(out), *opts]
    cfg = load_cfg_file(str(REPO / "configs" / recipe), opts)
    if method in ("d2rl", "agw"):
        from dgnet_plugin.visible_infrared import ensure_vi_data

        ensure_vi_data(cfg)
    engine = build_engine(cfg)
    if hasattr(engine, "set_teacher"):
        from dgnet_plugin.modeling import build_model

        t = load_cfg_file(
            str(REPO / "configs" / "teacher_r50.yml"), ["MODEL.BACKBONE.PRETRAIN", "False"]
        )
        engine.set_teacher(build_model(t, engine.num_classes).eval().to(engine.device))
    return engine


def generator_flops(engine) -> int:
    """Forward FLOPs of the stage's generator on one image at the stage's test size (the
    generation stage's input): ``gen_ab`` of a CycleGAN / SPGAN, ``gen(z)`` of LSRO's DCGAN,
    ``model(image, pose)`` of PN-GAN's pose generator."""
    model, cfg = engine.model, engine.cfg
    h, w = cfg.INPUT.SIZE_TEST
    meta = torch.device("meta")
    counter = FlopCount()
    with torch.no_grad(), counter:
        if hasattr(model, "gen_ab"):
            model.gen_ab(torch.empty(1, cfg.MODEL.GEN.IN_CHANNELS, h, w, device=meta))
        elif type(model).__name__ == "PoseGAN":
            conv = next(m for m in model.gen.modules() if isinstance(m, torch.nn.Conv2d))
            x = torch.empty(1, 3, h, w, device=meta)
            model(x, torch.empty(1, conv.in_channels - 3, h, w, device=meta))
        else:
            model.gen(torch.empty(1, cfg.MODEL.GEN.Z_DIM, device=meta))
    return counter.get_total_flops()


def measure(engine) -> dict:
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    params = list(engine.model.parameters())
    engine.run_step(0)  # optimiser states exist after the first step
    phases: dict[str, int] = {}
    counter = FlopCount()
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
        "acts": saved[0],
    }  # fmt: skip


HEADER = [
    "| method | stage | recipe | GFLOP / iter (by phase) | params / grads / optim MB | "
    "activations MB | H100 ms / iter | iterations (source) | GPU-h |",
    "|---|" + "---|" * 8,
]


def row(method, stage, recipe, kind, engine, util: float) -> tuple[str, float]:
    """The table row of one stage and its GPU-hours."""
    cfg = engine.cfg
    bf16 = cfg.SOLVER.AMP == "bf16"
    peak = (BF16_PEAK if bf16 else TF32_PEAK) * util
    count, source = iterations(method, kind, cfg)
    mb = lambda b: f"{b / 2**20:,.0f}"  # noqa: E731
    prec = "bf16" if bf16 else "fp32"
    if kind == "generate":
        flops = generator_flops(engine)
        sec = flops / peak
        params = sum(p.numel() * p.element_size() for p in engine.model.parameters())
        cells = (f"{flops / 1e9:,.1f} per image (forward)", f"{mb(params)} (all networks)", "",
                 f"{sec * 1e3:.3f} / image", f"{count:,} images ({source})")  # fmt: skip
    else:
        m = measure(engine)
        sec = max(m["flops"] / peak, 2 * m["acts"] / HBM)
        by = ", ".join(f"{k} {v / 1e9:,.0f}" for k, v in m["phases"].items())
        cells = (f"{m['flops'] / 1e9:,.0f} ({by})",
                 f"{mb(m['params'])} / {mb(m['grads'])} / {mb(m['optim'])}", mb(m["acts"]),
                 f"{sec * 1e3:.1f}", f"{count:,} ({source})")  # fmt: skip
    hours = sec * count / 3600
    return f"| {method} | {stage} | {recipe} ({prec}) | " + " | ".join(
        cells
    ) + f" | {hours:,.2f} |", hours


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the IDE recipe only")
    ap.add_argument("--util", type=float, default=0.4, help="fraction of the peak reached")
    ap.add_argument("--methods", nargs="*", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    methods = ["ide"] if args.quick else args.methods
    stages = [s for s in STAGES if methods is None or s[0] in methods]
    rows = list(HEADER)
    total: dict[str, float] = {}
    from torch.fx.experimental import _config as fx_config

    # boolean masks / nonzero (triplet mining) and host reads on meta: stand-ins (as the audit)
    nonzero = fx_config.patch(meta_nonzero_assume_all_nonzero=True)
    with tempfile.TemporaryDirectory() as d, meta_autocast(), nonzero, MetaScalars():
        tmp = Path(d)
        _market(tmp / "source"), _market(tmp / "target", skip=24)
        if any(kind == "reid" for *_, kind, _ in stages):
            _generated(tmp)
        gan = None
        for method, stage, recipe, kind, extra in stages:
            if kind == "generate":
                engine = gan  # the translator of the row above
            else:
                engine = build(method, recipe, kind, extra, tmp, tmp / f"{method}_{len(rows)}")
                gan = engine if kind == "gan" else None
            line, hours = row(method, stage, recipe, kind, engine, args.util)
            total[method] = total.get(method, 0.0) + hours
            rows.append(line)
            print(line, flush=True)
    print(
        "\nEstimates (meta device, torch.utils.flop_counter formulas; H100 at "
        f"{args.util:.0%} of the dense peak):"
    )
    print("\n".join(rows))
    for method, hours in total.items():
        print(f"{method}: {hours:,.2f} GPU-hours in all (every stage above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
