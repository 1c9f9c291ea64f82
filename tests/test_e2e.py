"""End to end through tools/train_net.py on real CUHK03 crops (small images, few iterations)."""

import json
from pathlib import Path

import pytest
import torch
import train_net
from conftest import MOBILENET_WEIGHTS, NO_TEACHER, NO_WARMUP_OPTS, REPO, cli_opts

from dgnet_plugin.utils.events import read_json_lines

DEMO = str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml")


def teacher_config(tmp: Path) -> str:
    """The demo teacher config, 3 iterations, as a file with an absolute _BASE_."""
    f = tmp / "teacher.yml"
    f.write_text(
        f"_BASE_: {REPO / 'configs' / 'teacher_cuhk03_cpu_demo.yml'}\n"
        f"MODEL:\n  BACKBONE:\n    PRETRAIN_PATH: {MOBILENET_WEIGHTS}\n"
        "DATALOADER:\n  NUM_WORKERS: 0\n  IMS_PER_BATCH: 8\nSOLVER:\n  MAX_ITER: 3\n"
        "TEST:\n  IMS_PER_BATCH: 64\n"
    )
    return str(f)


def dgnet_opts(root, out, tmp, max_iter):
    return cli_opts(root, out) + [
        "MODEL.TEACHER.CONFIG",
        teacher_config(tmp),
        "MODEL.TEACHER.WEIGHTS",
        str(tmp / "teacher" / "model_final.pth"),
        "SOLVER.MAX_ITER",
        str(max_iter),
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
        "VIS.PERIOD",
        "2",
        "VIS.NUM_IMAGES",
        "4",
        "VIS.QUALITY_PERIOD",
        "3",
        "SOLVER.IMS_PER_BATCH",
        "3",
        *NO_WARMUP_OPTS,
    ]


def eval_only_args(root, out, weights, *opts):
    """``--eval-only`` of the demo config on ``root`` with ``weights``, writing to ``out``."""
    return [
        "--config-file",
        DEMO,
        "--eval-only",
        *cli_opts(root, out),
        "MODEL.WEIGHTS",
        str(weights),
        *opts,
    ]


def evals(out):
    return [r for r in read_json_lines(str(out / "metrics.json")) if "market_layout/Rank-1" in r]


@pytest.fixture(scope="module")
def trained(tiny_market, tmp_path_factory):
    """Teacher (trained automatically), 4 DG-Net iterations, then --resume to 6."""
    tmp = tmp_path_factory.mktemp("e2e")
    out = tmp / "dgnet"
    assert train_net.cli(["--config-file", DEMO, *dgnet_opts(tiny_market, out, tmp, 4)]) == 0
    first = read_json_lines(str(out / "metrics.json"))
    assert (
        train_net.cli(["--config-file", DEMO, "--resume", *dgnet_opts(tiny_market, out, tmp, 6)])
        == 0
    )
    return tmp, out, first


def loss_records(out) -> dict[int, dict]:
    return {r["iteration"]: r for r in read_json_lines(str(out / "metrics.json")) if "total" in r}


def test_resume_is_an_exact_continuation_of_the_uninterrupted_run(trained, tiny_market):
    """6 iterations in one run give the losses of 4 + 6 resumed: same batches (the samplers
    skip what was drawn), same augmentation and dropout draws (RNG states restored; no
    loader workers), same optimiser and scheduler states."""
    tmp, out, _ = trained
    whole = tmp / "uninterrupted"
    assert train_net.cli(["--config-file", DEMO, *dgnet_opts(tiny_market, whole, tmp, 6)]) == 0
    resumed, straight = loss_records(out), loss_records(whole)
    assert sorted(straight) == [1, 2, 3, 4, 5, 6]
    for it in (5, 6):
        terms = set(straight[it]) - {"iteration", "time"}
        assert terms == set(resumed[it]) - {"iteration", "time"}
        for k in terms:
            assert resumed[it][k] == pytest.approx(straight[it][k], rel=1e-5, abs=1e-7), (it, k)


def test_teacher_is_trained_first_and_reported(trained):
    tmp, out, _ = trained
    assert (tmp / "teacher" / "model_final.pth").is_file()
    assert (tmp / "teacher" / "config.yaml").is_file() and evals(tmp / "teacher")
    log = (out / "log.txt").read_text()
    assert "teacher (IDE)" in log and "AppearanceEncoder" in log


def test_output_dir_holds_everything(trained):
    _, out, first = trained
    names = {p.name for p in out.iterdir()}
    assert {
        "config.yaml",
        "log.txt",
        "metrics.json",
        "last_checkpoint",
        "model_final.pth",
        "model_0000002.pth",
        "images",
    } <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    grids = sorted(p.name for p in (out / "images").iterdir())
    assert "gen_train_00000002.jpg" in grids and "gen_test_00000004.jpg" in grids
    from PIL import Image

    w, h = Image.open(out / "images" / "gen_train_00000002.jpg").size
    assert (w, h) == (2 + 4 * (32 + 2), 2 + 8 * (64 + 2))  # 4 columns, 8 rows of 64x32


def test_every_loss_term_was_active_and_finite(trained):
    _, out, first = trained
    train_recs = [r for r in first if "total" in r]
    terms = {
        "gan",
        "recon_x",
        "recon_xp",
        "recon_f",
        "recon_s",
        "cycle",
        "recon_id",
        "id",
        "id_fine",
        "id_pos",
        "teacher_kl",
        "fine",
        "dis_adv",
        "dis_reg",
    }
    assert terms <= set(train_recs[-1])
    assert all(v == v and abs(v) != float("inf") for r in train_recs for k, v in r.items())


def test_metrics_are_finite_and_resume_continues_the_iteration_count(trained):
    _, out, first = trained
    recs = read_json_lines(str(out / "metrics.json"))
    e = evals(out)
    assert [r["iteration"] for r in e] == [4, 6]
    for r in e:
        for k in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"):
            assert 0.0 <= r[f"market_layout/{k}"] <= 100.0
    iters = [r["iteration"] for r in recs if "total" in r]
    assert iters == [1, 2, 3, 4, 5, 6]  # 5 and 6 come from the resumed run
    assert "Resumed from" in (out / "log.txt").read_text()
    ckpt = torch.load(out / "model_final.pth", weights_only=True)
    assert ckpt["iteration"] == 6 and {
        "optimizer_model",
        "optimizer_gen",
        "optimizer_dis",
        "scheduler_model",
        "rng",
    } <= set(ckpt)


def test_eval_only_reproduces_the_final_metrics(trained, tiny_market, tmp_path):
    _, out, _ = trained
    ev = tmp_path / "eval"
    assert train_net.cli(eval_only_args(tiny_market, ev, out / "model_final.pth")) == 0
    last = evals(out)[-1]
    again = evals(ev)[-1]
    for k in ("Rank-1", "mAP", "mINP"):
        assert again[f"market_layout/{k}"] == pytest.approx(last[f"market_layout/{k}"], abs=1e-6)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_market, tmp_path, monkeypatch):
    from dgnet_plugin.methods.dgnet import meta_arch as dgnet_mod

    real = dgnet_mod.recon_l1_loss
    calls = {"n": 0}

    def poisoned(a, b):
        calls["n"] += 1
        v = real(a, b)
        return v * float("nan") if calls["n"] > 9 else v  # recon_x/xp/f/s/cycle: 5 per step

    monkeypatch.setattr(dgnet_mod, "recon_l1_loss", poisoned)
    out = tmp_path / "nan"
    opts = dgnet_opts(tiny_market, out, tmp_path, 6)
    opts[opts.index("LOG_PERIOD") + 1] = "2"
    assert train_net.cli(["--config-file", DEMO, *opts]) == 2
    log = (out / "log.txt").read_text()
    assert "NonFiniteLossError" in log and "'recon_x'" in log
    assert (out / "last_checkpoint").read_text() == "model_0000002.pth"
    ck = torch.load(out / "model_0000002.pth", weights_only=True)
    assert ck["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    "opts, message",
    [
        (["DATASETS.ROOT", "/nonexistent/reid"], "bounding_box_train"),
        (["SOLVER.MAX_ITERS", "3"], "SOLVER.MAX_ITERS"),
        (["MODEL.WEIGHTS", "/nonexistent/model.pth"], "/nonexistent/model.pth"),
    ],
)
def test_bad_input_is_a_clear_error(opts, message, tiny_market, tmp_path, capsys):
    teacher = ["MODEL.TEACHER.WEIGHTS", str(tmp_path / "teacher" / "model_final.pth")]
    args = ["--config-file", DEMO, *cli_opts(tiny_market, tmp_path / "bad"), *teacher, *opts]
    if "MODEL.WEIGHTS" in opts:
        args.insert(2, "--eval-only")
    assert train_net.cli(args) == 2
    err = capsys.readouterr().err
    assert "dgnet_plugin error" in err and message in err


def test_corrupt_image_is_a_clear_error(tiny_market, tmp_path, capsys):
    import shutil

    root = tmp_path / "market"
    shutil.copytree(tiny_market, root, symlinks=True)
    for p in (root / "bounding_box_train").iterdir():  # every training image is unreadable
        p.unlink()
        p.write_bytes(b"garbage")
    args = ["--config-file", DEMO, *cli_opts(root, tmp_path / "out"), *NO_TEACHER]
    assert train_net.cli(args) == 2
    assert "cannot decode image" in capsys.readouterr().err


def test_the_generated_images_are_measured_at_the_end(trained):
    """DG-Net's GenerationQuality hook: self-reconstruction SSIM beside its references, and
    the swap measures, in metrics.json and log.txt every VIS.QUALITY_PERIOD (3) iterations and
    at the final iteration of each run (4, then 6 after the resume)."""
    _, out, _ = trained
    recs = [r for r in read_json_lines(str(out / "metrics.json")) if "generation/recon_ssim" in r]
    assert [r["iteration"] for r in recs] == [3, 4, 6]
    for k in ("recon_ssim", "random_image_ssim", "blurred_copy_ssim"):
        assert -1.0 <= recs[-1][f"generation/{k}"] <= 1.0
    for k in ("colour_distance_to_appearance", "colour_distance_to_structure"):
        assert 0.0 <= recs[-1][f"generation/swap_{k}"] <= 1.0
    for k in ("chroma_distance_to_appearance", "chroma_distance_to_structure"):
        assert 0.0 <= recs[-1][f"generation/swap_{k}"] <= 0.75  # BT.601 chroma: at most ~0.71
    assert 0.0 <= recs[-1]["generation/swap_chroma_closer_to_appearance"] <= 1.0
    assert "Generated images at iteration 6" in (out / "log.txt").read_text()


def test_metrics_json_is_json_lines(trained):
    _, out, _ = trained
    for line in (out / "metrics.json").read_text().splitlines():
        json.loads(line)


def test_eval_only_on_several_test_sets_with_rerank_visrank_and_multi_query(
    trained, tiny_market, tmp_path
):
    import shutil

    _, out, _ = trained
    root = tmp_path / "root"  # one root serving 'market_layout' and torchreid's 'market1501'
    shutil.copytree(tiny_market, root, symlinks=True)
    (root / "market1501").symlink_to(root)
    ev = tmp_path / "eval"
    args = eval_only_args(
        root,
        ev,
        out / "model_final.pth",
        "DATASETS.TESTS",
        "('market_layout', 'market1501')",
        "TEST.RERANK",
        "True",
        "TEST.VISRANK",
        "True",
        "TEST.VISRANK_MAX_QUERIES",
        "3",
        "TEST.VISRANK_TOPK",
        "4",
        "TEST.MULTI_QUERY_DIR",
        str(root / "query"),
    )
    assert train_net.cli(args) == 0
    rec = evals(ev)[-1]
    for ds in ("market_layout", "market1501", "market_layout (multi-query)"):
        assert 0.0 <= rec[f"{ds}/mAP"] <= 100.0 and f"{ds}/mAP_market" in rec
    assert rec["market_layout/mAP"] == pytest.approx(rec["market1501/mAP"])  # same images
    assert len(list((ev / "visrank" / "market_layout").iterdir())) == 3
    log = (ev / "log.txt").read_text()
    assert "market1501" in log and "multi-query" in log


def test_leaderboard_gathers_output_dirs(trained, tmp_path, capsys):
    import leaderboard

    tmp, out, _ = trained
    md = tmp_path / "LEADERBOARD.md"
    assert leaderboard.main([str(out), str(tmp / "teacher"), "-o", str(md)]) == 0
    table = md.read_text()
    assert "| DG-Net (mobilenetv2) | dgnet | market_layout |" in table
    assert "| IDE (mobilenetv2) | teacher | market_layout |" in table
    last = evals(out)[-1]
    assert f"{last['market_layout/Rank-1']:.2f}" in table
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        leaderboard.main([str(tmp_path)])
