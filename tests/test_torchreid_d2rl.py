"""D2RL inside torchreid (:class:`dgnet_plugin.torchreid.ImageD2RLEngine`) on the real
SYSU-MM01 crops in the SYSU-MM01 layout under torchreid's ``root``: the example script end
to end, the same step as the CLI's ``D2RLEngine.train_step`` with the same networks updated
in the same phases, and the sampler / dataset errors."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import REPO
from test_d2rl import TINY
from torchreid_helpers import (
    StepRecorder,
    datamanager,
    make_torchreid_sysu,
    run_example,
    same_step,
)

from dgnet_plugin.config import ConfigError, load_cfg_file
from dgnet_plugin.data.sample import INFRARED, VISIBLE
from dgnet_plugin.methods.d2rl import D2RLEngine
from dgnet_plugin.torchreid import ImageD2RLEngine, build_d2rl
from dgnet_plugin.torchreid.d2rl import d2rl_batch

DEMO = str(REPO / "configs" / "d2rl_cpu_demo.yml")
#: the CPU demo, tiny, on its own data (no proxy built), every phase within 3 iterations
OPTS = [
    *TINY,
    "DATASETS.VI_PROXY.SOURCE",
    "",
    "DATASETS.VI_PROXY.SAMPLES",
    "",
    "MODEL.D2RL.WARMUP_GEN_ITER",
    "1",
    "MODEL.D2RL.WARMUP_REID_ITER",
    "1",
    "TEST.CROSS_MODALITY.TRIALS",
    "2",
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_torchreid_sysu(tmp_path_factory.mktemp("torchreid_sysu"))


def sysu_datamanager(root, **kwargs):
    """torchreid's ImageDataManager on the plugin's ``sysu_mm01``: 2 identities x 4 images."""
    args = dict(sources="sysu_mm01", size=(32, 16), batch=8, k=4)
    args.update(kwargs)
    return datamanager(root, **args)


def test_example_script_one_epoch_prints_sysu_results(data_root, tmp_path, monkeypatch, capsys):
    """examples/torchreid_d2rl.py, tiny: one epoch (5 iterations: T_I alone, T_F alone, then
    jointly) on the 5 training people, then torchreid's final test() with the SYSU-MM01
    protocol on the 5 test people (20 infrared queries, 40 visible gallery images); printed
    rank-1 / mAP and loss meters; checkpoints of the three registered networks."""
    env = {
        "REID_CONFIG": DEMO,
        "REID_SIZE": "32x16",
        "REID_BATCH": "8",
        "REID_INSTANCES": "4",
        "REID_SAVE_DIR": tmp_path / "log",
    }
    printed = run_example("torchreid_d2rl.py", [data_root, *OPTS], env, monkeypatch, capsys)
    print(printed[-1500:])
    assert "** Results ** (sysu_mm01 all-search single-shot)" in printed
    assert "Rank-1  :" in printed and "mAP:" in printed
    assert "recon_x" in printed and "triplet" in printed and "dis_adv" in printed
    for name in ("model", "gen", "dis"):
        assert (tmp_path / "log" / name / "model.pth.tar-1").is_file()


def test_batches_split_by_modality_with_one_channel_infrared(data_root):
    """Every kept identity has both modalities; infrared images have one channel holding
    the pixel values of the three equal channels torchreid read (1e-6)."""
    dm = sysu_datamanager(data_root)
    model = build_d2rl(dm.num_train_pids, DEMO, OPTS)
    data = next(iter(dm.train_loader))
    b = d2rl_batch(data, model.stats)
    assert b["img_v"].shape[1:] == (3, 32, 16) and b["img_i"].shape[1:] == (1, 32, 16)
    assert set(b["pid_v"].tolist()) == set(b["pid_i"].tolist())
    ir = [j for j, m in enumerate(data["modality"]) if m == INFRARED]
    ir = [j for j in ir if int(data["pid"][j]) in set(b["pid_i"].tolist())]
    mean3, std3 = 0.485, 0.229
    pixels = data["img"][ir, 0] * std3 + mean3
    (m1,), (s1,) = model.stats[1]
    assert torch.allclose(b["img_i"][:, 0] * s1 + m1, pixels, atol=1e-6)


def test_wrong_sampler_source_or_batch_is_one_clear_error(data_root, tmp_path):
    dm = sysu_datamanager(data_root, train_sampler="RandomSampler")
    model = build_d2rl(5, DEMO, OPTS)
    with pytest.raises(ConfigError, match="train_sampler.*num_instances"):
        ImageD2RLEngine(dm, model, use_gpu=False)
    with pytest.raises(ConfigError, match="train_sampler.*num_instances"):
        ImageD2RLEngine(sysu_datamanager(data_root, k=1, batch=4), model, use_gpu=False)
    one_modality = {
        "img": torch.zeros(4, 3, 32, 16),
        "pid": torch.tensor([0, 0, 1, 1]),
        "modality": [VISIBLE, VISIBLE, INFRARED, INFRARED],
    }
    with pytest.raises(ValueError, match="train_sampler.*num_instances"):
        d2rl_batch(one_modality, model.stats)
    from torchreid_helpers import make_torchreid_market

    market = make_torchreid_market(tmp_path / "m")
    with pytest.raises(ConfigError, match="visible-infrared dataset"):
        ImageD2RLEngine(datamanager(market), model, use_gpu=False)


def test_one_iteration_equals_the_cli_train_step(data_root, tmp_path):
    """From the same weights, optimiser states and seed: the loss terms (1e-5) and the
    parameter update (1e-6) of an ImageD2RLEngine iteration equal D2RLEngine.train_step's,
    for each phase (iteration 0: T_I alone, 1: T_F alone, 2: jointly), each iteration
    started from the same state; the same networks move in the same phases."""
    sysu = str(data_root / "SYSU-MM01")
    cfg = load_cfg_file(
        DEMO,
        OPTS
        + ["DATASETS.NAMES", f"('sysu_mm01@{sysu}',)", "DATASETS.TESTS", f"('sysu_mm01@{sysu}',)"]
        + ["OUTPUT_DIR", str(tmp_path / "cli")],
    )
    cli = D2RLEngine(cfg)
    model = build_d2rl(cli.num_classes, DEMO, OPTS)
    model.load_state_dict(cli.model.state_dict())
    engine = ImageD2RLEngine(sysu_datamanager(data_root), model, use_gpu=False)
    nets = {"gen": "gen", "dis": "dis", "reid": "reid_net"}
    ours_opts = {"reid": engine.step.optimizers["model"]}
    ours_opts.update({k: engine.step.optimizers[k] for k in ("gen", "dis")})
    rec_cli = StepRecorder(cli.optimizers, {n: getattr(cli.model, a) for n, a in nets.items()})
    rec_tr = StepRecorder(ours_opts, {n: getattr(model, a) for n, a in nets.items()})
    engine.num_batches, engine.epoch = len(engine.train_loader), 0
    loader = iter(engine.train_loader)
    cli.model.train(), model.train()
    for it in range(3):
        data = next(loader)
        engine.batch_idx = it
        cli.model.load_state_dict(model.state_dict())
        for k, opt in ours_opts.items():
            cli.optimizers[k].load_state_dict(copy.deepcopy(opt.state_dict()))
        b = engine.batch(data)  # what forward_backward feeds the step
        torch.manual_seed(it)
        ours = engine.forward_backward(data)
        torch.manual_seed(it)
        theirs = cli.train_step(b, it)
        for scheduler in cli.schedulers.values():  # the CLI's LR hook
            scheduler.step()
        same_step(ours, theirs, model, cli.model, it)
    # T_I alone (D, then G); T_F alone; jointly (D, then G and T_F from one backward)
    expected = ["dis", "gen", "reid", "dis", "gen", "reid"]
    assert rec_tr.events == rec_cli.events == [(p, frozenset({p})) for p in expected]
