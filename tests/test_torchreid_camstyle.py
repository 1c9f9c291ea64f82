"""Re-ID on real + generated images inside torchreid
(:class:`dgnet_plugin.torchreid.ImageGeneratedEngine`, CamStyle's config) on real CUHK03
crops under torchreid's ``market1501`` folder plus a tiny generated set written by the
project's writer with a stand-in translator: the dataset keeps each item's flag and label,
the example script end to end, the same step as the CLI's ``CamStyleEngine.train_step``."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import MOBILENET_WEIGHTS, REPO, other_camera_plan
from PIL import Image
from torchreid_helpers import (
    datamanager,
    make_torchreid_market,
    market_folder,
    run_example,
    same_update,
)
from torchvision.transforms.functional import to_tensor

from dgnet_plugin.config import ConfigError, load_cfg_file
from dgnet_plugin.data.datasets import parse_market_name
from dgnet_plugin.data.generated import write_generated_set
from dgnet_plugin.methods.camstyle import CamStyleEngine
from dgnet_plugin.torchreid import (
    ImageGeneratedEngine,
    build_generated_reid,
    register_generated_dataset,
)

DEMO = str(REPO / "configs" / "camstyle_cpu_demo.yml")
OPTS = ["MODEL.BACKBONE.PRETRAIN_PATH", str(MOBILENET_WEIGHTS), "DATALOADER.NUM_WORKERS", "0"]


def _translate(entries):
    """A stand-in camera-style translator: the source crop with its colours inverted."""
    imgs = [to_tensor(Image.open(e["source"]).convert("RGB")) for e in entries]
    return 1.0 - torch.stack(imgs)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``(torchreid root, generated folder)``: 4 training identities of real crops and one
    generated image per training crop (to the other camera), written by the project's
    writer."""
    root = make_torchreid_market(tmp_path_factory.mktemp("torchreid_data"))
    sources = sorted((market_folder(root) / "bounding_box_train").glob("*.jpg"))
    entries = other_camera_plan(sources)
    gen = tmp_path_factory.mktemp("generated")
    write_generated_set(str(gen), entries, _translate, "stand-in inversion", progress=False)
    register_generated_dataset("market1501_test_generated", str(gen))
    return root, gen, len(sources)


def test_dataset_keeps_each_items_flag_and_source_label(data):
    root, _, n_real = data
    dm = datamanager(
        root,
        sources="market1501_test_generated",
        targets="market1501",
        train_sampler="RandomSampler",
    )
    ds = dm.train_loader.dataset
    assert dm.num_train_pids == 4 and len(ds) == 2 * n_real
    real_label = {parse_market_name(p)[0]: pid for p, pid, _, d in ds.train if d == 0}
    for i in range(len(ds)):
        item = ds[i]
        assert item["generated"] == (i >= n_real) == ("s0_" in item["impath"])
        assert item["pid"] == real_label[parse_market_name(item["impath"])[0]]
    batch = next(iter(dm.train_loader))
    assert batch["generated"].dtype == torch.bool


def test_example_script_one_epoch_prints_results(data, tmp_path, monkeypatch, capsys):
    root, gen, _ = data
    env = {"REID_CONFIG": DEMO, "REID_SIZE": "64x32", "REID_BATCH": "16"}
    env["REID_SAVE_DIR"] = tmp_path / "log"
    argv = [root, gen, *OPTS]
    printed = run_example("torchreid_camstyle.py", argv, env, monkeypatch, capsys)
    print(printed[-700:])
    assert "** Results **" in printed and "Rank-1  :" in printed and "mAP:" in printed
    assert "id " in printed  # torchreid's loss meter
    assert (tmp_path / "log" / "model" / "model.pth.tar-1").is_file()


def test_a_real_only_datamanager_is_one_clear_error(data):
    root, _, _ = data
    model = build_generated_reid(4, DEMO, OPTS)
    with pytest.raises(ConfigError, match="register_generated_dataset"):
        ImageGeneratedEngine(datamanager(root), model, use_gpu=False)


def test_one_iteration_equals_the_cli_train_step(data, tmp_path):
    """From the same weights, optimiser state and seed, on a batch with real and generated
    images: the loss (1e-5) and the parameter update (1e-6) of an ImageGeneratedEngine
    iteration equal CamStyleEngine.train_step's (two iterations, each from the same state;
    CamStyle's separate forwards of the real and the generated images, LSR for the
    generated ones)."""
    root, gen, _ = data
    cfg = load_cfg_file(
        DEMO,
        OPTS
        + ["DATASETS.ROOT", str(market_folder(root)), "DATASETS.NAMES", "('market_layout',)"]
        + ["DATASETS.TESTS", "('market_layout',)", "GENERATED.ROOT", str(gen)]
        + ["OUTPUT_DIR", str(tmp_path / "cli")],
    )
    cli = CamStyleEngine(cfg)
    model = build_generated_reid(cli.num_classes, DEMO, OPTS)
    model.load_state_dict(cli.model.state_dict())
    dm = datamanager(
        root,
        sources="market1501_test_generated",
        targets="market1501",
        train_sampler="RandomSampler",
        batch=16,
    )
    engine = ImageGeneratedEngine(dm, model, use_gpu=False)
    engine.num_batches, engine.epoch = len(engine.train_loader), 0
    batches = [d for d in engine.train_loader if 0 < int(d["generated"].sum()) < len(d["pid"])]
    cli.model.train(), model.train()
    for it, d in enumerate(batches[:2]):
        engine.batch_idx = it
        cli.model.load_state_dict(model.state_dict())
        opt = engine.step.optimizers["model"]
        cli.optimizers["model"].load_state_dict(copy.deepcopy(opt.state_dict()))
        b = engine.batch(d)
        torch.manual_seed(it)
        ours = engine.forward_backward(d)
        torch.manual_seed(it)
        theirs = cli.train_step(b, it)
        for scheduler in cli.schedulers.values():
            scheduler.step()
        diff = abs(ours["id"] - float(theirs["id"]))
        assert set(ours) == set(theirs) == {"id"} and diff <= 1e-5
        same_update(model, cli.model, it, diff)


def test_checkpoints_both_ways_give_the_same_evaluation(data, tmp_path):
    """A CLI checkpoint of CamStyle's re-ID run -> torchreid's file (the whole re-ID network
    as ``model``, :data:`WHOLE_MODEL`) -> torchreid's ``resume_from_checkpoint`` and
    ``test()``: the same rank-1 and mAP as ``--eval-only`` of the CLI file; the engine's own
    ``model.pth.tar-N`` -> ``torchreid_to_cli`` -> ``--eval-only``: the same again. Images at
    their stored size (128x64), so both readers see the same pixels."""
    from train_net import cli as train_net_cli

    from dgnet_plugin.torchreid.checkpoint import (
        WHOLE_MODEL,
        cli_to_torchreid,
        torchreid_files,
        torchreid_to_cli,
    )
    from dgnet_plugin.utils import torchreid_compat as tr
    from dgnet_plugin.utils.events import read_json_lines

    root, gen, _ = data
    size = (128, 64)
    folder = market_folder(root)
    opts = OPTS + ["DATASETS.ROOT", str(folder), "DATASETS.NAMES", "('market_layout',)"]
    opts += ["DATASETS.TESTS", "('market_layout',)", "GENERATED.ROOT", str(gen)]
    cfg = load_cfg_file(DEMO, opts + ["OUTPUT_DIR", str(tmp_path / "cli")])
    cli = CamStyleEngine(cfg)
    torch.manual_seed(0)
    for p in cli.model.classifier.parameters():  # not the weights a fresh build has
        p.data.add_(0.01 * torch.randn_like(p))
    cli_file = cli.save_checkpoint("model_final")

    def eval_only(weights, out):
        args = ["--config-file", DEMO, "--eval-only", "OUTPUT_DIR", str(out), *opts]
        args += ["MODEL.WEIGHTS", str(weights), "INPUT.SIZE_TEST", str(size)]
        assert train_net_cli(args) == 0
        last = [r for r in read_json_lines(str(out / "metrics.json")) if "market_layout/mAP" in r]
        return last[-1]["market_layout/Rank-1"], last[-1]["market_layout/mAP"]

    ref = eval_only(cli_file, tmp_path / "ev1")
    files = cli_to_torchreid(cli_file, str(tmp_path / "converted"), epoch=3, networks=WHOLE_MODEL)
    model = build_generated_reid(cli.num_classes, DEMO, OPTS)
    assert tr.utils.resume_from_checkpoint(files["model"], model) == 3
    dm = datamanager(root, size=size, sources="market1501_test_generated", targets="market1501")
    engine = ImageGeneratedEngine(dm, model, use_gpu=False)
    rank1 = engine.test()
    got = engine.last_results["market1501"]
    assert float(rank1) * 100 == pytest.approx(ref[0], abs=1e-9)
    assert (got["Rank-1"], got["mAP"]) == pytest.approx(ref, abs=1e-6)

    engine.save_model(4, rank1, str(tmp_path / "log"))
    files = torchreid_files(str(tmp_path / "log"), 5, names=tuple(WHOLE_MODEL))
    back = torchreid_to_cli(files, str(tmp_path / "back" / "model.pth"), networks=WHOLE_MODEL)
    assert eval_only(back, tmp_path / "ev2") == pytest.approx(ref, abs=1e-6)
