"""Device audit: every CUDA path run, as far as a machine without a GPU allows, on ``meta``.

For each of the nine methods, each training engine of its recipe (IDE / DG-Net's teacher,
DG-Net, D2RL, AGW, the CycleGAN translators of CamStyle, SPGAN and PTGAN, LSRO's DCGAN,
PN-GAN's pose generator, and the re-ID engine on real + generated images of the offline
methods) is built from the method's CPU demo config with ``MODEL.DEVICE meta`` (tiny batches
on real CUHK03 crops), and two iterations run: every update phase, forward, backward and the
optimisers' steps, on ``meta`` tensors. The generation commands (the CycleGAN translators,
LSRO's DCGAN, PN-GAN's generator) and the test-feature extraction plus ranking run the same
way. :class:`device_audit.CpuLeakAudit` watches every aten op: the test fails on a tensor
*created* on the CPU (e.g. ``torch.tensor(...)`` / ``torch.zeros(...)`` without ``device=``)
or *moved* there (``.cpu()``), except the designed host work listed in :data:`ALLOWED` with its
reason. An op that mixes a CPU tensor with a device tensor raises on ``meta`` as it does on
CUDA.

What it cannot check: data loading (not audited: the loaders, samplers and transforms work on
the host by design), numerical behaviour (``meta`` has no values: reductions, ``.item()``,
``bool(t)``, boolean masks are answered with stand-ins and listed as host reads), the CUDA
kernels themselves (cuDNN, fused optimisers: ``meta`` has no fused optimiser, so engines take
the ``foreach`` one, whose CPU step counters are not findings), autocast (on ``meta`` a
``torch.autocast(x.device.type)`` region runs as a CPU one) and ``torch.compile``. Those need
a CUDA machine: ``benchmarks/device_check.sh``.
"""

from __future__ import annotations

import pytest
import torch
from conftest import NO_WARMUP_OPTS, REPO, make_tiny_market, vi_proxy_opts
from device_audit import META, audit

from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.engine import build_engine
from dgnet_plugin.offline_augmentation.config import gan_stage_config

pytestmark = pytest.mark.device_audit

#: designed host work inside the audited code: (file, code on the line or "") -> reason
ALLOWED = {
    ("modeling/generators/dcgan.py", "torch.rand"): "seeded host noise (the same draws on "
    "every device and process count), one copy of a (N, z) batch per step",
    ("modeling/generators/dcgan.py", "torch.randn"): "as above, normal noise",
    ("methods/pngan/gan.py", "torch.rand(n * world_size"): "seeded host draw of which pairs "
    "become self pairs (resumable, the same on every process count), N booleans per step",
    ("evaluation/features.py", "feats.append(f.cpu())"): "features are gathered on the host "
    "batch by batch (device memory); the ranking moves them back to the device",
    ("evaluation/ranking.py", "cmc = (cmc / n_valid).cpu()"): "the result: the CMC curve",
}


def _allowed(finding: str) -> bool:
    origin = finding.split(" at ", 1)[1]
    where, _, code = origin.partition(" ")
    return any(where.startswith(f + ":") and c in code for f, c in ALLOWED)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from dgnet_plugin.data import load_train_set
    from dgnet_plugin.data.datasets import parse_market_name
    from dgnet_plugin.data.generated import generated_file_name, write_generated_set

    tmp = tmp_path_factory.mktemp("audit")
    root = make_tiny_market(tmp / "source")
    target = make_tiny_market(tmp / "target", skip_ids=12)
    cfg = load_cfg_file(
        str(REPO / "configs" / "camstyle_cpu_demo.yml"), ["DATASETS.ROOT", str(root)]
    )
    plan = []
    for i, (path, *_) in enumerate(load_train_set(cfg)[0][:24]):
        pid, cam = parse_market_name(path)
        plan.append({"file": generated_file_name(pid, cam, i, "x"), "source": path,
                     "source_pid": pid, "source_camid": cam, "target": "x"})  # fmt: skip
    generated = tmp / "generated"
    grey = lambda batch: torch.full((len(batch), 3, 32, 16), 0.5)  # noqa: E731
    write_generated_set(str(generated), plan, grey, "stand-in", batch_size=8, progress=False)
    return {"tmp": tmp, "root": root, "target": target, "generated": generated}


def _opts(data, name):
    return [
        "DATASETS.ROOT", str(data["root"]), "OUTPUT_DIR", str(data["tmp"] / name),
        "MODEL.BACKBONE.PRETRAIN", "False", "DATALOADER.NUM_WORKERS", "0",
        "MODEL.DEVICE", "meta", "TEST.IMS_PER_BATCH", "16", "SOLVER.MAX_ITER", "4",
    ]  # fmt: skip


def _cross_domain(data):
    return ["DATASETS.NAMES", "('market_layout',)", "DOMAINS.SPLIT.ROOT", "",
            "DOMAINS.TARGET", f"('market_layout@{data['target']}',)"]  # fmt: skip


def _target_tests(data):
    return [*_cross_domain(data), "DATASETS.TESTS", f"('market_layout@{data['target']}',)"]


def _translator(config, engine, arch, extra=()):
    def opts(data):
        extra_ = [*extra(data)] if callable(extra) else list(extra)
        cfg = load_cfg_file(str(REPO / "configs" / config), _opts(data, "x") + extra_)
        stage = [str(x) for kv in gan_stage_config(cfg, (0, 0)).items() for x in kv]
        return [*stage, "ENGINE.NAME", engine, "MODEL.META_ARCHITECTURE", arch, *extra_,
                "SOLVER.IMS_PER_BATCH", "2"]  # fmt: skip

    return opts


def _reid(extra=()):
    def opts(data):
        return [*(extra(data) if callable(extra) else extra), "GENERATED.ROOT",
                str(data["generated"]), "SOLVER.IMS_PER_BATCH", "4",
                "GENERATED.PER_BATCH", "2"]  # fmt: skip

    return opts


#: (method, engine label, CPU demo config, options(data))
ENGINES = [
    ("ide", "teacher", "teacher_cuhk03_cpu_demo.yml", lambda d: ["SOLVER.IMS_PER_BATCH", "4"]),
    ("dgnet", "dgnet", "dgnet_cuhk03_cpu_demo.yml",
     lambda d: [*NO_WARMUP_OPTS, "SOLVER.IMS_PER_BATCH", "2"]),
    ("d2rl", "d2rl", "d2rl_cpu_demo.yml",  # the joint phase (every network) from iteration 0
     lambda d: [*vi_proxy_opts(d["tmp"] / "vi"), "MODEL.D2RL.WARMUP_GEN_ITER", "0",
                "MODEL.D2RL.WARMUP_REID_ITER", "0"]),
    ("agw", "agw", "agw_cpu_demo.yml", lambda d: vi_proxy_opts(d["tmp"] / "vi")),
    ("camstyle", "cyclegan", "camstyle_cpu_demo.yml",
     _translator("camstyle_cpu_demo.yml", "CamStyleCycleGANEngine", "CycleGAN",
                 ["CAMSTYLE.PAIR", "(1, 2)"])),
    ("camstyle", "reid", "camstyle_cpu_demo.yml", _reid()),
    ("spgan", "translator", "spgan_cpu_demo.yml",
     _translator("spgan_cpu_demo.yml", "SPGANTranslatorEngine", "SPGAN", _cross_domain)),
    ("spgan", "reid", "spgan_cpu_demo.yml", _reid(_target_tests)),
    ("ptgan", "translator", "ptgan_cpu_demo.yml",
     _translator("ptgan_cpu_demo.yml", "PTGANTranslatorEngine", "CycleGAN", _cross_domain)),
    ("ptgan", "reid", "ptgan_cpu_demo.yml", _reid(_target_tests)),
    ("lsro", "dcgan", "lsro_cuhk03_cpu_demo.yml",
     _translator("lsro_cuhk03_cpu_demo.yml", "LSRODCGANEngine", "DCGAN")),
    ("lsro", "reid", "lsro_cuhk03_cpu_demo.yml", _reid()),
    ("pngan", "pose_gan", "pngan_cuhk03_cpu_demo.yml",
     _translator("pngan_cuhk03_cpu_demo.yml", "PNGANGeneratorEngine", "PoseGAN")),
    ("pngan", "reid", "pngan_cuhk03_cpu_demo.yml", _reid()),
]  # fmt: skip


def build_on_meta(data, label, config, opts):
    cfg = load_cfg_file(str(REPO / "configs" / config), _opts(data, label) + opts(data))
    if config.startswith(("agw", "d2rl")):
        from dgnet_plugin.visible_infrared.proxy import ensure_vi_data

        ensure_vi_data(cfg)
    engine = build_engine(cfg)
    if hasattr(engine, "set_teacher"):  # DG-Net: its IDE teacher, as the run loads it
        from dgnet_plugin.modeling import build_model

        teacher_cfg = load_cfg_file(str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml"),
                                    ["MODEL.BACKBONE.PRETRAIN", "False"])  # fmt: skip
        engine.set_teacher(build_model(teacher_cfg, engine.num_classes).eval().to(META))
    assert engine.device == META and all(p.device == META for p in engine.model.parameters())
    return engine


def _check(a, what):
    leaks = [f for f in a.findings() if not _allowed(f)]
    assert a.ops > 0, f"{what}: nothing ran on the device"
    assert not leaks, f"{what}: host tensors inside a device path:\n" + "\n".join(leaks)


@pytest.mark.parametrize(
    "method, label, config, opts", ENGINES, ids=[f"{m}-{lab}" for m, lab, *_ in ENGINES]
)
def test_training_step_stays_on_the_device(data, method, label, config, opts):
    engine = build_on_meta(data, f"{method}_{label}", config, opts)
    steps = dict.fromkeys(engine.optimizers, 0)
    hooks = [
        opt.register_step_post_hook(lambda *_, n=name: steps.__setitem__(n, steps[n] + 1))
        for name, opt in engine.optimizers.items()
    ]
    with audit() as a:
        for it in range(3):
            losses = engine.run_step(it)
    for h in hooks:
        h.remove()
    _check(a, f"{method} {label}: run_step")
    assert losses and all(v.device == META for v in losses.values())
    assert all(steps.values()), f"update phases that did not step: {steps}"
    for opt in engine.optimizers.values():
        state = [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
        assert all(v.device == META for v in state if v.dim())


def _save_run(engine, run_dir):
    """A finished stage's run folder (``config.yaml`` + ``model_final.pth``) of ``engine``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(engine.cfg.dump())
    state = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in engine.model.state_dict().items()}
    torch.save({"model": state}, run_dir / "model_final.pth")


GENERATORS = [e for e in ENGINES if e[1] in ("cyclegan", "translator", "dcgan", "pose_gan")]


@pytest.mark.parametrize(
    "method, label, config, opts", GENERATORS, ids=[f"{m}-{lab}" for m, lab, *_ in GENERATORS]
)
def test_generation_stays_on_the_device(data, method, label, config, opts, monkeypatch):
    """The generation stage's compute (the stage's own ``generate`` with the run's device,
    ``StageContext.device = meta``) until the images leave for the disk writer."""
    import importlib

    from dgnet_plugin.engine.stages import StageContext
    from dgnet_plugin.offline_augmentation import engine as offline
    from dgnet_plugin.offline_augmentation.cyclegan import Translators

    engine = build_on_meta(data, f"{method}_{label}_gen", config, opts)
    run_dir = data["tmp"] / f"{method}_{label}_run"
    _save_run(engine, run_dir)
    outputs = []

    def writer(root, plan, translate, *args, **kwargs):
        entries = [dict(e, translator=str(run_dir), direction="ab") for e in plan[:2]]
        if isinstance(translate, Translators):  # loading reads the checkpoint on the host
            translate.model(str(run_dir))
        with audit() as a:
            outputs.append(translate(entries))
        _check(a, f"{method} generation")

    extra = _cross_domain(data) if method in ("spgan", "ptgan") else []
    main = load_cfg_file(str(REPO / "configs" / config), _opts(data, f"{method}_m") + extra)
    ctx = StageContext(main, config, [], META)
    if method in ("lsro", "pngan"):
        stages = importlib.import_module(f"dgnet_plugin.methods.{method}.stages")
        monkeypatch.setattr(stages, "write_generated_set", writer)
        monkeypatch.setattr(stages, "dcgan_dir" if method == "lsro" else "pose_gan_dir",
                            lambda cfg: str(run_dir))  # fmt: skip
        if method == "pngan":
            import json

            from dgnet_plugin.data import load_train_set

            poses = {"centres": [[[0.5, 0.1 + 0.05 * k, 2.0] for k in range(17)]],
                     "counts": [1], "num_poses": 1, "source": "x"}  # fmt: skip
            (data["tmp"] / "poses.json").write_text(json.dumps(poses))
            monkeypatch.setattr(stages, "poses_path", lambda cfg: str(data["tmp"] / "poses.json"))
            monkeypatch.setattr(stages, "load_train_set", load_train_set, raising=False)
        stages.generate(ctx)
    elif method == "camstyle":
        from dgnet_plugin.methods.camstyle import pipeline

        monkeypatch.setattr(pipeline, "generation_plan", lambda cfg: _plan(data))
        monkeypatch.setattr(pipeline, "write_generated_set", writer)
        monkeypatch.setattr(pipeline, "link_test_sets", lambda *a: None)
        pipeline.generate(ctx)
    else:  # SPGAN, PTGAN: the CycleGAN translators of offline_augmentation/cyclegan.py
        monkeypatch.setattr(offline, "source_to_target_plan", lambda cfg, g: _plan(data))
        monkeypatch.setattr(offline, "write_generated_set", writer)
        generate = next(
            s for s in offline.cross_domain_stages(main, "X", "CycleGAN", "g")
            if s.name == "generate"
        )  # fmt: skip
        generate.run(ctx)
        assert isinstance(Translators(META).device, torch.device)
    assert outputs and outputs[0].device == META and outputs[0].shape[0] == 2


def _plan(data):
    from dgnet_plugin.data.datasets import parse_market_name

    paths = sorted((data["root"] / "bounding_box_train").glob("*.jpg"))[:2]
    return [{"file": f"{i}.jpg", "source": str(p), "source_pid": parse_market_name(str(p))[0],
             "source_camid": 1, "target": "t"} for i, p in enumerate(paths)]  # fmt: skip


def test_feature_extraction_and_ranking_stay_on_the_device(data):
    """The evaluation a run ends with (flip-averaged test features, then the ranking and
    metrics on the device), on the IDE teacher."""
    from dgnet_plugin.evaluation import evaluate_reid_model

    engine = build_on_meta(data, "eval", *ENGINES[0][2:])
    engine.model.eval()
    with audit() as a:
        evaluate_reid_model(engine.model.reid, engine.test_sets, META, engine.cfg.TEST)
    _check(a, "evaluation")
