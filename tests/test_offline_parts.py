"""The shared parts of the offline generate-then-train pipeline: CycleGAN's ResNet
translator and 70x70 PatchGAN, the label-assignment loss, the cycle / identity / masked
identity terms, the linear LR decay, the real:generated sampler, the generated-set writer and
reader, and the stage runner."""

from __future__ import annotations

import csv
import math
import os

import pytest
import torch
from conftest import CUHK03_MARKET, other_camera_plan

from dgnet_plugin.losses import (
    cycle_consistency_loss,
    identity_mapping_loss,
    masked_identity_loss,
)
from dgnet_plugin.modeling.discriminators import PatchGANDiscriminator, patchgan_receptive_field
from dgnet_plugin.modeling.generators import ResnetGenerator
from dgnet_plugin.offline_augmentation.label_assignment import (
    label_assignment_loss,
    label_targets,
)


# ----------------------------------------------------------------------------- networks
@pytest.mark.parametrize(
    ("in_ch", "out_ch", "blocks", "size"),
    [(3, 3, 9, (64, 32)), (3, 3, 6, (128, 64)), (1, 3, 6, (64, 32)), (6, 3, 9, (64, 32))],
)
def test_resnet_generator_shapes(in_ch, out_ch, blocks, size):
    g = ResnetGenerator(in_ch, out_ch, dim=8, n_blocks=blocks)
    assert len(g.net[3].blocks) == blocks
    y = g(torch.randn(2, in_ch, *size))
    assert y.shape == (2, out_ch, *size)
    assert y.abs().max() <= 1.0  # tanh output in [-1, 1]


def test_resnet_generator_full_width_at_256x128_and_bad_size():
    g = ResnetGenerator(3, 3, dim=64, n_blocks=9)
    assert g(torch.randn(1, 3, 256, 128)).shape == (1, 3, 256, 128)
    # c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3: the paper's parameter count
    n = sum(p.numel() for p in g.parameters())
    assert 11.3e6 < n < 11.4e6, n
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.randn(1, 3, 66, 32))


def test_resnet_generator_nearest_upsampling_has_no_checkerboard():
    """``upsample="nearest"`` (resize-convolution, Odena et al. 2016): same shapes, no
    transposed conv, and a constant feature map upsamples to a constant interior, where a
    stride-2 3x3 transposed conv prints a period-2 pattern (uneven kernel overlap)."""
    g = ResnetGenerator(3, 3, dim=8, n_blocks=2, upsample="nearest")
    assert g(torch.randn(2, 3, 64, 32)).shape == (2, 3, 64, 32)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    x = torch.ones(1, 32, 8, 8)
    torch.manual_seed(0)
    for mode, checkerboard in (("transpose", True), ("nearest", False)):
        g = ResnetGenerator(3, 3, dim=8, n_blocks=2, upsample=mode)
        up = g.net[4] if mode == "transpose" else torch.nn.Sequential(g.net[4], g.net[5])
        y = up(x)[0, :, 2:-2, 2:-2]  # away from the zero-padded border
        assert y.shape[-2:] == (12, 12)
        spread = (y - y.mean((-2, -1), keepdim=True)).abs().amax().item()
        assert (spread > 1e-3) == checkerboard, (mode, spread)
    with pytest.raises(ValueError, match="MODEL.GEN.UPSAMPLE"):
        ResnetGenerator(3, 3, dim=8, upsample="bilinear")


def test_patchgan_shapes_and_70x70_receptive_field():
    assert patchgan_receptive_field(3) == 70
    d = PatchGANDiscriminator(3, dim=8, n_layers=3)
    assert d(torch.randn(2, 3, 256, 256))[0].shape == (2, 1, 30, 30)
    assert d(torch.randn(2, 3, 64, 32))[0].shape == (2, 1, 6, 2)
    assert PatchGANDiscriminator(1, dim=8)(torch.randn(1, 1, 128, 64))[0].shape == (1, 1, 14, 6)
    # measured: the input pixels that reach one central output score span 70 x 70
    d = PatchGANDiscriminator(3, dim=4, n_layers=3, norm="none")
    x = torch.randn(1, 3, 160, 160, requires_grad=True)
    out = d(x)[0]
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    hit = x.grad.abs().sum((0, 1)) > 0
    rows, cols = hit.any(1).nonzero(), hit.any(0).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


# ----------------------------------------------------------------------------- label assignment
LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]])
PIDS = torch.tensor([0, 2, 1])


def _log_softmax_by_hand(row):
    z = sum(math.exp(v) for v in row)
    return [v - math.log(z) for v in row]


def _ce_by_hand(row, q):
    lp = _log_softmax_by_hand(row)
    return -sum(qi * li for qi, li in zip(q, lp))


def test_label_targets_by_hand():
    eps, k = 0.1, 3
    assert label_targets("hard", LOGITS, PIDS)[1].tolist() == [0, 0, 1]
    lsr = label_targets("lsr", LOGITS, PIDS, epsilon=eps)[1]
    assert lsr.tolist() == pytest.approx([eps / k, eps / k, 1 - eps + eps / k])
    assert label_targets("lsro", LOGITS)[0].tolist() == pytest.approx([1 / 3] * 3)
    assert label_targets("argmax", LOGITS).argmax(1).tolist() == [0, 1, 2]
    t = torch.tensor([[0.2, 0.3, 0.5]] * 3)
    assert torch.equal(label_targets("teacher", LOGITS, teacher_probs=t), t)
    with pytest.raises(ValueError, match="unknown"):
        label_targets("soft", LOGITS, PIDS)
    with pytest.raises(ValueError, match="0..2"):
        label_targets("hard", LOGITS, torch.tensor([0, 3, 1]))
    with pytest.raises(ValueError, match="teacher_probs"):
        label_targets("teacher", LOGITS)


def test_label_assignment_loss_per_sample_flag_by_hand():
    rows = LOGITS.tolist()
    generated = torch.tensor([False, True, True])
    eps = 0.1
    # CamStyle: hard CE on real, LSR(0.1) on generated
    expected = (
        _ce_by_hand(rows[0], [1, 0, 0])
        + _ce_by_hand(rows[1], [eps / 3, eps / 3, 1 - eps + eps / 3])
        + _ce_by_hand(rows[2], [eps / 3, 1 - eps + eps / 3, eps / 3])
    ) / 3
    got = label_assignment_loss(LOGITS, PIDS, generated, "hard", "lsr", eps)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # LSRO, Zheng et al. Eq. 4: -(1 - Z) log p(y) - (Z / K) sum_k log p(k); labels of the
    # generated images are ignored (-1)
    pids = torch.tensor([0, -1, -1])
    lsro = (
        sum(
            -(1 - z) * _log_softmax_by_hand(r)[max(y, 0)] - z / 3 * sum(_log_softmax_by_hand(r))
            for r, y, z in zip(rows, pids.tolist(), [0, 1, 1])
        )
        / 3
    )
    got = label_assignment_loss(LOGITS, pids, generated, "hard", "lsro")
    assert got.item() == pytest.approx(lsro, rel=1e-6)
    # argmax pseudo-labels: generated rows take their own argmax (1 and 2)
    pseudo = (
        _ce_by_hand(rows[0], [1, 0, 0]) + _ce_by_hand(rows[1], [0, 1, 0])
        + _ce_by_hand(rows[2], [0, 0, 1])
    ) / 3  # fmt: skip
    got = label_assignment_loss(LOGITS, pids, generated, "hard", "argmax")
    assert got.item() == pytest.approx(pseudo, rel=1e-6)
    # teacher soft labels on generated rows; all-real batch is plain cross-entropy
    t = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    soft = (
        _ce_by_hand(rows[0], [1, 0, 0]) + _ce_by_hand(rows[1], t[1].tolist())
        + _ce_by_hand(rows[2], t[2].tolist())
    ) / 3  # fmt: skip
    got = label_assignment_loss(LOGITS, PIDS, generated, "hard", "teacher", teacher_probs=t)
    assert got.item() == pytest.approx(soft, rel=1e-6)
    real = label_assignment_loss(LOGITS, PIDS, torch.zeros(3, dtype=torch.bool))
    assert real.item() == pytest.approx(torch.nn.functional.cross_entropy(LOGITS, PIDS).item())


def test_label_assignment_gradient_pulls_lsro_rows_to_uniform():
    logits = LOGITS.clone().requires_grad_(True)
    label_assignment_loss(logits, torch.tensor([0, -1, -1]), torch.tensor([0, 1, 1]), "hard",
                          "lsro").backward()  # fmt: skip
    # d/dz of -(1/K) sum log softmax = (p - 1/K) / N: zero-sum, pushes to uniform
    p = LOGITS.softmax(1)
    assert torch.allclose(logits.grad[1:], (p[1:] - 1 / 3) / 3, atol=1e-6)


# ----------------------------------------------------------------------------- reconstruction
def test_cycle_identity_and_masked_identity_by_hand():
    x = torch.zeros(1, 1, 2, 2)
    y = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]]])
    assert cycle_consistency_loss(y, x).item() == pytest.approx(1.5)
    assert identity_mapping_loss(y, x).item() == pytest.approx(1.5)
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    # masked difference (1, 0, 0, 3): ||.||_2 = sqrt(10), / sqrt(4 elements)
    assert masked_identity_loss(y, x, mask).item() == pytest.approx(math.sqrt(10) / 2)
    with pytest.raises(ValueError, match="mask"):
        masked_identity_loss(y, x, torch.ones(1, 1, 3, 3))


def test_masked_identity_loss_sends_no_gradient_from_background():
    real = torch.randn(2, 3, 8, 4)
    translated = torch.randn(2, 3, 8, 4, requires_grad=True)
    mask = torch.zeros(2, 1, 8, 4)
    mask[:, :, 2:6, 1:3] = 1.0  # the person
    masked_identity_loss(translated, real, mask).backward()
    bg = (mask == 0).expand_as(translated)
    assert translated.grad[bg].abs().max() == 0
    assert translated.grad[~bg].abs().min() > 0
    # an all-background image: finite zero gradient
    t2 = translated.detach().clone().requires_grad_(True)
    masked_identity_loss(t2, real, torch.zeros(2, 1, 8, 4)).backward()
    assert torch.isfinite(t2.grad).all() and t2.grad.abs().max() == 0


# ----------------------------------------------------------------------------- LR schedule
def test_linear_decay_schedule():
    from dgnet_plugin.engine.optim import build_linear_decay_scheduler, linear_decay_factor

    assert [linear_decay_factor(i, 100, 200) for i in (0, 99, 100, 150, 200, 250)] == [
        1.0, 1.0, 1.0, 0.5, 0.0, 0.0,
    ]  # fmt: skip
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = build_linear_decay_scheduler(opt, 2, 4)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4, 0.0])
    state = sched.state_dict()
    assert state["lr_lambdas"][0] == {"decay_start": 2, "max_iter": 4}
    with pytest.raises(ValueError, match="MAX_ITER"):
        build_linear_decay_scheduler(opt, 5, 4)


# ----------------------------------------------------------------------------- sampler
def test_ratio_batch_sampler_fixes_the_ratio_and_resumes():
    from dgnet_plugin.data.samplers import RatioBatchSampler

    s = RatioBatchSampler(10, 7, 4, 2, seed=3)
    it = iter(s)
    batches = [next(it) for _ in range(12)]
    for b in batches:
        assert len(b) == 6
        assert all(i < 10 for i in b[:4]) and all(10 <= i < 17 for i in b[4:])
    # every real image once per 10 draws, every generated once per 7
    real = [i for b in batches[:5] for i in b[:4]]
    assert sorted(real[:10]) == list(range(10))
    gen = [i for b in batches for i in b[4:]]
    assert sorted(gen[:7]) == list(range(10, 17))
    # resume at 5: the same batches as the uninterrupted run
    it5 = iter(RatioBatchSampler(10, 7, 4, 2, seed=3, start=5))
    assert [next(it5) for _ in range(7)] == batches[5:]
    # two processes: contiguous halves of each part
    r0 = next(iter(RatioBatchSampler(10, 7, 4, 2, 0, 2, seed=3)))
    r1 = next(iter(RatioBatchSampler(10, 7, 4, 2, 1, 2, seed=3)))
    assert r0[:2] + r1[:2] == batches[0][:4] and r0[2:] + r1[2:] == batches[0][4:]
    # the baseline: real images only
    assert all(i < 10 for i in next(iter(RatioBatchSampler(10, 0, 4, 0))))
    with pytest.raises(ValueError, match="generate them first"):
        RatioBatchSampler(10, 1, 4, 2)


# ----------------------------------------------------------------------------- generated sets
def _plan(n):
    return other_camera_plan(sorted((CUHK03_MARKET / "bounding_box_train").glob("*.jpg"))[:n])


class _Killed(Exception):
    pass


def _translate(entries):  # a stand-in generator: the grey-level of the source's camera
    return torch.stack([torch.full((3, 16, 8), 0.25 * e["source_camid"]) for e in entries])


def test_generated_set_writer_resumes_and_reader_keeps_provenance(tmp_path):
    from dgnet_plugin.data import load_train_set
    from dgnet_plugin.data.generated import (
        GeneratedSetError,
        is_complete,
        link_test_sets,
        read_generated_set,
        write_generated_set,
    )
    from dgnet_plugin.offline_augmentation.data import label_generated

    out = tmp_path / "gen"
    entries = _plan(10)
    calls, kill = [], [True]

    def interrupted(batch):
        calls.append(len(batch))
        if kill[0] and len(calls) == 2:
            raise _Killed  # killed during the second batch
        return _translate(batch)

    with pytest.raises(_Killed):
        write_generated_set(out, entries, interrupted, "stand-in c1<->c2", "ckpt.pth", 4, False)
    assert not is_complete(out)
    assert len(list((out / "bounding_box_train").glob("*.jpg"))) == 4
    assert not [p for p in os.listdir(out) if p.startswith(".tmp-")]
    with pytest.raises(Exception, match="not a finished generated set"):
        read_generated_set(out)
    calls.clear()
    kill[0] = False
    stats = write_generated_set(out, entries, interrupted, "stand-in c1<->c2", "ckpt.pth", 4,
                                False)  # fmt: skip
    assert stats == {"total": 10, "written": 6, "skipped": 4} and calls == [4, 2]
    assert is_complete(out)
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and len({r["file"] for r in rows}) == 10
    # again: nothing to do, the manifest unchanged
    assert write_generated_set(out, entries, _translate, "stand-in c1<->c2", "ckpt.pth",
                               progress=False)["written"] == 0  # fmt: skip
    with pytest.raises(GeneratedSetError, match="new folder"):
        write_generated_set(out, entries, _translate, "other", "ckpt.pth", progress=False)

    samples = read_generated_set(out)
    assert len(samples) == 10
    s = samples[0]
    assert s["generated"] and s["source"] == entries[0]["source"]
    assert s["target"] == entries[0]["target"] and s["generator"] == "stand-in c1<->c2"
    assert s["checkpoint"] == "ckpt.pth" and s["camid"] == int(s["target"][1]) - 1
    from PIL import Image

    assert Image.open(s["impath"]).size == (8, 16)

    # labels: the source identity's label in the real training set
    from dgnet_plugin.config import get_cfg

    cfg = get_cfg()
    cfg.DATASETS.ROOT, cfg.DATASETS.NAMES = str(CUHK03_MARKET), ("market_layout",)
    real, _ = load_train_set(cfg)
    items = label_generated(samples, real)
    label_of = {os.path.basename(p): y for p, y, *_ in real}
    for (_path, y, _, _), e in zip(items, entries):
        assert y == label_of[os.path.basename(e["source"])]
    assert all(y == -1 for _, y, _, _ in label_generated(samples, real, labelled=False))
    with pytest.raises(GeneratedSetError, match="does not have"):
        label_generated(samples, real[100:])

    # the folder as a Market layout
    from dgnet_plugin.data import MarketLayout

    link_test_sets(str(CUHK03_MARKET), str(out))
    ds = MarketLayout(root=str(out))
    assert len(ds.train) == 10 and len(ds.query) == 1400


def test_mixed_loader_batches_carry_the_generated_flag(tmp_path):
    from dgnet_plugin.config import get_cfg
    from dgnet_plugin.data import load_train_set
    from dgnet_plugin.data.generated import read_generated_set, write_generated_set
    from dgnet_plugin.offline_augmentation.data import build_mixed_train_loader, label_generated

    entries = _plan(6)
    write_generated_set(tmp_path, entries, _translate, "stand-in", progress=False)
    cfg = get_cfg()
    cfg.DATASETS.ROOT, cfg.DATASETS.NAMES = str(CUHK03_MARKET), ("market_layout",)
    cfg.INPUT.SIZE_TRAIN, cfg.DATALOADER.NUM_WORKERS, cfg.SOLVER.IMS_PER_BATCH = (16, 8), 0, 4
    real, _ = load_train_set(cfg)
    gen = label_generated(read_generated_set(tmp_path), real)
    batch = next(build_mixed_train_loader(cfg, real, gen, 2))
    assert batch["img"].shape == (6, 3, 16, 8)
    assert batch["generated"].tolist() == [False] * 4 + [True] * 2
    assert all("s0_" in p for p in batch["impath"][4:])


# ----------------------------------------------------------------------------- stages
def test_run_stages_in_order_reuses_finished_and_runs_one(tmp_path):
    from dgnet_plugin.config import ConfigError, get_cfg
    from dgnet_plugin.engine.stages import MAIN_STAGE, Stage, StageContext, run_stages

    log = []
    done = set()

    def make(name):
        def run(ctx):
            log.append(name)
            done.add(name)

        return Stage(name, run, lambda ctx: name in done, f"stage {name}")

    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    ctx = StageContext(cfg, "x.yml", [])
    stages = [make("gan"), make("generate")]
    run_stages(stages, ctx)
    run_stages(stages, ctx)  # both finished: reused
    assert log == ["gan", "generate"]
    run_stages(stages, ctx, only="generate")  # one stage, even when finished
    assert log == ["gan", "generate", "generate"]
    run_stages(stages, ctx, only=MAIN_STAGE)  # the engine's own training: nothing here
    with pytest.raises(ConfigError, match="gan, generate, train"):
        run_stages(stages, ctx, only="nope")


def test_a_changed_stage_config_reruns_it_and_every_later_stage(tmp_path):
    """stages.json records what each stage ran with; a change of a key the stage reads moves
    its output aside and reruns it and the stages after it; a change of a key it ignores (or
    of a run-only key such as MODEL.DEVICE) reuses it."""
    from dgnet_plugin.config import get_cfg
    from dgnet_plugin.engine.stages import RECORD_NAME, Stage, StageContext, run_stages

    log = []
    out = tmp_path / "gan_out"

    def gan_run(ctx):
        log.append("gan")
        out.mkdir(exist_ok=True)
        (out / "model_final.pth").write_text(str(ctx.cfg.SOLVER.GEN.LR))

    def make(name):
        def run(ctx):
            log.append(name)
            (tmp_path / name).write_text("x")

        return Stage(name, run, lambda ctx: (tmp_path / name).exists(), name, ignore=("SOLVER",))

    gan = Stage(
        "gan",
        gan_run,
        lambda ctx: (out / "model_final.pth").exists(),
        "gan",
        config=lambda c: c,
        ignore=("SOLVER.REID",),
        outputs=lambda c: [str(out)],
    )
    stages = [gan, make("generate"), make("baseline")]
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    run_stages(stages, StageContext(cfg, device=torch.device("cpu")))
    assert log == ["gan", "generate", "baseline"] and (tmp_path / RECORD_NAME).is_file()
    cfg.SOLVER.REID.BASE_LR, cfg.MODEL.DEVICE = 0.123, "cuda"  # ignored / run-only
    run_stages(stages, StageContext(cfg, device=torch.device("cpu")))
    assert log == ["gan", "generate", "baseline"]
    old, cfg.SOLVER.GEN.LR = cfg.SOLVER.GEN.LR, 0.5
    run_stages(stages, StageContext(cfg, device=torch.device("cpu")))
    assert log[3:] == ["gan", "generate", "baseline"]
    text = (tmp_path / "log.txt").read_text()  # the main run's log
    assert f"stage 1/4 'gan': its config changed since it ran (SOLVER.GEN.LR: {old} -> 0.5)" in text
    assert "'generate': its config changed since it ran (an earlier stage's config changed)" in text
    assert (tmp_path / "gan_out.stale" / "model_final.pth").read_text() == str(old)
    assert (out / "model_final.pth").read_text() == "0.5"
    run_stages(stages, StageContext(cfg, device=torch.device("cpu")))  # recorded: reused
    assert len(log) == 6
    (out / "model_final.pth").unlink()  # an unfinished stage (same config): only it runs
    run_stages(stages, StageContext(cfg, device=torch.device("cpu")))
    assert log[6:] == ["gan"]


def test_translator_stage_resume_ignores_the_re_id_solver_keys(tmp_path):
    """A translator stage's ``--resume`` compares only the SOLVER keys its engine reads
    (``SOLVER_KEYS``): a changed re-ID learning rate or LR step is not refused there, a
    changed translator learning rate is; an engine without ``SOLVER_KEYS`` (the re-ID run)
    still refuses the re-ID change."""
    from conftest import REPO

    from dgnet_plugin.config import ConfigError, load_cfg_file
    from dgnet_plugin.engine.run import check_resume_config, engine_solver_keys
    from dgnet_plugin.offline_augmentation.config import gan_stage_config

    demo = str(REPO / "configs" / "camstyle_cpu_demo.yml")
    merges = {
        **gan_stage_config(load_cfg_file(demo)),
        "ENGINE.NAME": "CamStyleCycleGANEngine",
        "MODEL.META_ARCHITECTURE": "CycleGAN",
    }
    gan_opts = [str(x) for kv in merges.items() for x in kv]
    old = load_cfg_file(demo, gan_opts)
    (tmp_path / "config.yaml").write_text(old.dump())
    keys = engine_solver_keys(old)
    assert keys == ("SOLVER.GEN", "SOLVER.DIS", "SOLVER.AMP")

    reid_changed = load_cfg_file(demo, [*gan_opts, "SOLVER.REID.BASE_LR", "0.001",
                                        "SOLVER.STEPS", "(123,)"])  # fmt: skip
    check_resume_config(reid_changed, str(tmp_path), keys)  # not refused
    with pytest.raises(ConfigError, match=r"SOLVER.REID.BASE_LR: 0.00035 -> 0.001"):
        check_resume_config(reid_changed, str(tmp_path), None)  # every SOLVER key counts

    gen_changed = load_cfg_file(demo, [*gan_opts, "SOLVER.GEN.LR", "0.002"])
    with pytest.raises(ConfigError, match=r"SOLVER.GEN.LR: 0.001 -> 0.002"):
        check_resume_config(gen_changed, str(tmp_path), keys)
    longer = load_cfg_file(demo, [*gan_opts, "SOLVER.MAX_ITER", "999"])
    check_resume_config(longer, str(tmp_path), keys)  # lengthening stays allowed

    reid = load_cfg_file(demo)  # the main engine (CamStyleEngine) reads every SOLVER key
    assert engine_solver_keys(reid) is None
