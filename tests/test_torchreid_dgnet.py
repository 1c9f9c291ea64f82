"""DG-Net inside torchreid (:class:`dgnet_plugin.torchreid.ImageDGNetEngine`) on real CUHK03
crops under torchreid's own ``market1501`` folder: the example script end to end, the same
step as the CLI's ``DGNetEngine.train_step``, and checkpoints in both directions."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from conftest import MOBILENET_WEIGHTS, NO_WARMUP_OPTS, REPO, small_cfg
from torchreid_helpers import (
    StepRecorder,
    datamanager,
    make_torchreid_market,
    market_folder,
    run_example,
    same_step,
)

from dgnet_plugin.config import ConfigError
from dgnet_plugin.methods.dgnet import DGNetEngine
from dgnet_plugin.torchreid import (
    ImageDGNetEngine,
    TorchreidTeacher,
    build_dgnet,
    build_dgnet_optimizers,
)
from dgnet_plugin.torchreid.checkpoint import (
    cli_to_torchreid,
    load_cli_weights,
    torchreid_files,
    torchreid_to_cli,
)
from dgnet_plugin.utils import torchreid_compat as tr
from dgnet_plugin.utils.events import read_json_lines

DEMO = str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml")
#: the CPU demo without Ea copied from a CLI teacher (a torchreid teacher here)
OPTS = ["MODEL.BACKBONE.PRETRAIN_PATH", str(MOBILENET_WEIGHTS), "MODEL.TEACHER.INIT_EA", "False"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_torchreid_market(tmp_path_factory.mktemp("torchreid_data"))


@pytest.fixture(scope="module")
def teacher_file(data_root, tmp_path_factory):
    """An ``osnet_x0_25`` trained for one epoch by torchreid's ``ImageSoftmaxEngine``."""
    out = tmp_path_factory.mktemp("teacher")
    dm = datamanager(data_root, train_sampler="RandomSampler")
    torch.manual_seed(0)
    model = tr.models.build_model("osnet_x0_25", dm.num_train_pids, pretrained=False)
    opt = tr.optim.build_optimizer(model, optim="adam", lr=3e-4)
    sched = tr.optim.build_lr_scheduler(opt, lr_scheduler="single_step", stepsize=10)
    engine = tr.engine.ImageSoftmaxEngine(dm, model, opt, sched, use_gpu=False)
    engine.train(print_freq=100)  # one epoch, no evaluation
    tr.utils.save_checkpoint({"state_dict": model.state_dict(), "epoch": 1}, str(out))
    return str(out / "model.pth.tar-1")


def test_example_script_one_epoch_then_torchreid_resume(
    data_root, teacher_file, tmp_path, monkeypatch, capsys
):
    """examples/torchreid_dgnet.py, tiny: one epoch on the real crops, torchreid's printed
    rank-1 / mAP, its checkpoints, then torchreid's resume_from_checkpoint reads them."""
    env = {
        "REID_CONFIG": DEMO,
        "REID_TEACHER": teacher_file,
        "REID_TEACHER_NAME": "osnet_x0_25",
        "REID_SIZE": "64x32",
        "REID_BATCH": "8",
        "REID_SAVE_DIR": tmp_path / "log",
    }
    argv = [data_root, *OPTS, *NO_WARMUP_OPTS]
    printed = run_example("torchreid_dgnet.py", argv, env, monkeypatch, capsys)
    assert "** Results **" in printed and "Rank-1  :" in printed and "mAP:" in printed
    assert "teacher_kl" in printed and "dis_adv" in printed  # torchreid's loss meters
    files = torchreid_files(str(tmp_path / "log"), 1)
    model = build_dgnet(4, DEMO, OPTS)
    opt = build_dgnet_optimizers(model)["model"]
    assert tr.utils.resume_from_checkpoint(files["model"], model.reid, opt) == 1
    ckpt = tr.utils.load_checkpoint(files["model"])
    assert isinstance(ckpt["rank1"], float) and ckpt["optimizer"]["state"]


def test_wrong_sampler_is_one_clear_error(data_root):
    dm = datamanager(data_root, train_sampler="RandomSampler")
    with pytest.raises(ConfigError, match="train_sampler.*num_instances"):
        ImageDGNetEngine(dm, build_dgnet(4, DEMO, OPTS), use_gpu=False)


def test_one_iteration_equals_the_cli_train_step(data_root, teacher_file, tmp_path):
    """From the same weights, optimiser states and seed: the loss terms (1e-5) and the
    parameter update of an ImageDGNetEngine iteration equal DGNetEngine.train_step's (three
    iterations, each started from the same state); the same networks move in
    the same phases (D; then G; then Ea) over 3 iterations (the last with every term); the
    teacher never moves."""
    cli = DGNetEngine(small_cfg(market_folder(data_root), tmp_path / "cli", *OPTS, *NO_WARMUP_OPTS))
    osnet = tr.models.build_model("osnet_x0_25", 4, pretrained=False)
    tr.utils.load_pretrained_weights(osnet, teacher_file)
    teacher = TorchreidTeacher(osnet).eval()
    cli.set_teacher(teacher)
    model = build_dgnet(cli.num_classes, DEMO, OPTS + NO_WARMUP_OPTS)
    model.load_state_dict(cli.model.state_dict())
    engine = ImageDGNetEngine(
        datamanager(data_root), model, teacher=copy.deepcopy(osnet), use_gpu=False
    )
    nets = ("reid", "gen", "dis")
    rec_cli = StepRecorder(cli.optimizers, {n: getattr(cli.model, n) for n in nets})
    rec_tr = StepRecorder(engine.step.optimizers, {n: getattr(model, n) for n in nets})
    teacher_before = copy.deepcopy(osnet.state_dict())
    engine.num_batches, engine.epoch = len(engine.train_loader), 0
    loader = iter(engine.train_loader)
    cli.model.train(), model.train()
    for it in range(3):  # the code, cycle and teacher terms enter at iteration 2
        data = next(loader)
        engine.batch_idx = it
        # each iteration from the same state: float noise of the previous step not carried
        cli.model.load_state_dict(model.state_dict())
        for k, opt in engine.step.optimizers.items():
            cli.optimizers[k].load_state_dict(copy.deepcopy(opt.state_dict()))  # own tensors
        random.seed(it), torch.manual_seed(it)
        pairs = engine.pairs(data, it)  # what forward_backward feeds the step
        random.seed(it), torch.manual_seed(it)
        ours = engine.forward_backward(data)
        torch.manual_seed(it)
        theirs = cli.train_step(pairs, it)
        for scheduler in cli.schedulers.values():  # the CLI's LR hook
            scheduler.step()
        same_step(ours, theirs, model, cli.model, it)
    assert {"teacher_kl", "fine", "cycle", "recon_f", "recon_s"} <= set(ours)
    expected = [("dis", {"dis"}), ("gen", {"gen"}), ("model", {"reid"})] * 3
    assert rec_tr.events == rec_cli.events == [(p, frozenset(s)) for p, s in expected]
    for k, v in osnet.state_dict().items():
        assert torch.equal(v, teacher_before[k])


def _eval_only(folder, out, weights, size):
    from train_net import cli

    args = ["--config-file", DEMO, "--eval-only", "OUTPUT_DIR", str(out)]
    args += ["DATASETS.ROOT", str(folder), "MODEL.WEIGHTS", str(weights)]
    args += ["INPUT.SIZE_TEST", str(size), "DATALOADER.NUM_WORKERS", "0"]
    assert cli(args) == 0
    last = [r for r in read_json_lines(str(out / "metrics.json")) if "market_layout/mAP" in r]
    return last[-1]["market_layout/Rank-1"], last[-1]["market_layout/mAP"]


def test_checkpoints_both_ways_give_the_same_evaluation(data_root, tmp_path):
    """A CLI checkpoint (DGNetEngine's checkpointer) -> torchreid files -> torchreid's
    resume_from_checkpoint and test(): the same rank-1 and mAP as --eval-only of the CLI
    file; the engine's own torchreid files -> torchreid_to_cli -> --eval-only: the same
    again. Images at their stored size (128x64), so both readers see the same pixels.
    torchreid's FeatureExtractor reads the converted Ea file (all weights loaded)."""
    size = (128, 64)
    cli = DGNetEngine(small_cfg(market_folder(data_root), tmp_path / "cli", *OPTS))
    torch.manual_seed(0)
    for name, p in cli.model.named_parameters():  # not the weights a fresh build has
        if not name.startswith("reid.backbone."):  # (Ea's ImageNet features kept)
            p.data.add_(0.01 * torch.randn_like(p))
    cli_file = cli.save_checkpoint("model_final")
    (tmp_path / "cli" / "config.yaml").write_text(cli.cfg.dump())
    ref = _eval_only(market_folder(data_root), tmp_path / "ev1", cli_file, size)

    files = cli_to_torchreid(cli_file, str(tmp_path / "converted"), epoch=3)
    model = build_dgnet(cli.num_classes, DEMO, OPTS)
    for name, net in (("model", model.reid), ("gen", model.gen), ("dis", model.dis)):
        assert tr.utils.resume_from_checkpoint(files[name], net) == 3
    dm = datamanager(data_root, size=size)
    engine = ImageDGNetEngine(dm, model, use_gpu=False)
    rank1 = engine.test()
    got = engine.last_results["market1501"]
    print("CLI --eval-only R1/mAP", ref, "torchreid test()", got["Rank-1"], got["mAP"])
    assert float(rank1) * 100 == pytest.approx(ref[0], abs=1e-9)
    assert (got["Rank-1"], got["mAP"]) == pytest.approx(ref, abs=1e-6)

    engine.save_model(4, rank1, str(tmp_path / "log"))
    back = torchreid_to_cli(
        torchreid_files(str(tmp_path / "log"), 5), str(tmp_path / "back" / "model.pth"), model.cfg
    )
    again = _eval_only(market_folder(data_root), tmp_path / "ev2", back, size)
    assert again == pytest.approx(ref, abs=1e-6)
    fresh = build_dgnet(cli.num_classes, DEMO, OPTS)
    load_cli_weights(fresh, back)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, cli.model.state_dict()[k])

    fx = tr.utils.FeatureExtractor(
        model_name="dgnet_mobilenetv2",
        model_path=files["model"],
        image_size=size,
        device="cpu",
        verbose=False,
    )
    # every weight but the ID classifiers (FeatureExtractor builds 1 class; eval skips them)
    ids = ("classifier.classifier.", "classifier_fine.classifier.")
    ours = {k: v for k, v in model.reid.state_dict().items() if not k.startswith(ids)}
    theirs = {k: v for k, v in fx.model.state_dict().items() if not k.startswith(ids)}
    assert set(theirs) == set(ours)
    for k, v in theirs.items():
        assert torch.equal(v, ours[k]), k
    query = sorted((market_folder(data_root) / "query").iterdir())[:2]
    assert fx([str(p) for p in query]).shape == (2, 1024)
