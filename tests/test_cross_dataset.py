"""Cross-dataset evaluation on real CUHK03 crops: datasets with roots of their own
(``name@root``) and ``--eval-only`` without a training set (train on A, test on B)."""

from pathlib import Path

import pytest
import train_net
from conftest import REPO, cli_opts, make_tiny_market

from dgnet_plugin.config import ConfigError, load_cfg_file
from dgnet_plugin.data.build import (
    build_test_sets,
    dataset_label,
    load_train_set,
    open_dataset,
    parse_dataset_entry,
)
from dgnet_plugin.utils.events import read_json_lines

IDE = str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml")
METRICS = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")


def ids_of(root: Path, split: str) -> set[str]:
    return {p.name[:4] for p in (root / split).iterdir()}


@pytest.fixture(scope="module")
def markets(tmp_path_factory) -> tuple[Path, Path]:
    """A: 12 training and 6 test identities; B: 5 training and 6 test identities, other
    people (disjoint from A in every split)."""
    tmp = tmp_path_factory.mktemp("xdata")
    a = make_tiny_market(tmp / "market_a")
    b = make_tiny_market(tmp / "market_b", n_train_ids=5, n_test_ids=6, skip_ids=40)
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        assert not ids_of(a, split) & ids_of(b, split)
    return a, b


def ide_cfg(root, *opts):
    return load_cfg_file(IDE, ["DATASETS.ROOT", str(root), "DATALOADER.NUM_WORKERS", "0", *opts])


# ----------------------------------------------------------------------------- entries
def test_entry_is_a_name_under_root_or_a_name_with_its_own_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_dataset_entry("market1501", "data") == ("market1501", str(tmp_path / "data"))
    assert parse_dataset_entry("market_layout@/x/y/", "data") == ("market_layout", "/x/y")
    assert parse_dataset_entry("market_layout@rel", "data")[1] == str(tmp_path / "rel")
    assert parse_dataset_entry("market_layout@~/m", "d")[1] == str(Path("~/m").expanduser())
    assert dataset_label("market_layout", "/data") == "market_layout"
    assert dataset_label("market_layout@/data/Market-1501/", "/d") == "market_layout@Market-1501"
    for bad in ("market_layout@", "@/x", ""):
        with pytest.raises(ConfigError, match="name@/path/to/root"):
            parse_dataset_entry(bad, "data")


def test_datasets_are_cached_per_name_and_absolute_root(markets, monkeypatch):
    a, b = markets
    monkeypatch.chdir(a.parent)
    assert open_dataset("market_layout", str(a)) is open_dataset("market_layout", "market_a/")
    assert open_dataset("market_layout", str(a)) is not open_dataset("market_layout", str(b))


def test_training_sets_with_roots_of_their_own_are_merged(markets):
    a, b = markets
    cfg = ide_cfg("/nonexistent", "DATASETS.NAMES", f"('market_layout@{a}', 'market_layout@{b}')")
    items, k = load_train_set(cfg)
    assert k == 12 + 5 and sorted({pid for _, pid, *_ in items}) == list(range(17))
    cfg = ide_cfg(a, "DATASETS.NAMES", "('market_layout',)")  # old configs: unchanged
    assert load_train_set(cfg)[1] == 12


def test_test_sets_are_labelled_and_a_folder_twice_is_refused(markets):
    a, b = markets
    tests = f"('market_layout', 'market_layout@{b}')"
    sets = build_test_sets(ide_cfg(a, "DATASETS.TESTS", tests))
    assert list(sets) == ["market_layout", "market_layout@market_b"]
    gallery = {
        Path(p).name[:4] for p, *_ in sets["market_layout@market_b"]["gallery"].dataset.items
    }
    assert gallery == ids_of(b, "bounding_box_test")
    twice = f"('market_layout@{b}', 'market_layout@{b}/')"
    with pytest.raises(ConfigError, match="market_layout@market_b"):
        build_test_sets(ide_cfg(a, "DATASETS.TESTS", twice))


# ----------------------------------------------------------------------------- train A, test B
@pytest.fixture(scope="module")
def trained_on_a(markets, tmp_path_factory) -> Path:
    """3 IDE iterations on A (12 identities), evaluated on A at the end."""
    a, _ = markets
    out = tmp_path_factory.mktemp("ide_a")
    args = [
        "--config-file",
        IDE,
        *cli_opts(a, out),
        *("SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "8"),
    ]
    assert train_net.cli(args) == 0
    return out


def eval_args(root, out, weights, *opts):
    return [
        "--config-file",
        IDE,
        "--eval-only",
        *cli_opts(root, out),
        "MODEL.WEIGHTS",
        str(weights),
        *opts,
    ]


def last_eval(out: Path) -> dict:
    return [r for r in read_json_lines(str(out / "metrics.json")) if any("/mAP" in k for k in r)][
        -1
    ]


def test_eval_only_on_other_folders_needs_no_training_set(markets, trained_on_a, tmp_path):
    """A checkpoint of A (12 classes) on B (5 training identities) and A again, with
    DATASETS.ROOT at no dataset: the architecture's class count comes from the checkpoint."""
    a, b = markets
    ev = tmp_path / "eval"
    tests = f"('market_layout@{b}', 'market_layout@{a}')"
    weights = trained_on_a / "model_final.pth"
    assert train_net.cli(eval_args("/nonexistent/root", ev, weights, "DATASETS.TESTS", tests)) == 0
    rec = last_eval(ev)
    for ds in ("market_layout@market_b", "market_layout@market_a"):
        for k in METRICS:
            assert 0.0 <= rec[f"{ds}/{k}"] <= 100.0
    trained = last_eval(trained_on_a)  # A's numbers are those of the training run's evaluation
    for k in METRICS:
        assert rec[f"market_layout@market_a/{k}"] == pytest.approx(trained[f"market_layout/{k}"])
    assert "market_layout@market_b" in (ev / "log.txt").read_text()


def test_eval_only_under_a_root_with_another_identity_count(markets, trained_on_a, tmp_path):
    """DATASETS.ROOT at B, whose training split has 5 identities (the checkpoint has 12): no
    shape error, B's metrics under the plain name."""
    _, b = markets
    ev = tmp_path / "eval"
    assert train_net.cli(eval_args(b, ev, trained_on_a / "model_final.pth")) == 0
    assert 0.0 <= last_eval(ev)["market_layout/mAP"] <= 100.0


@pytest.mark.parametrize(
    "opts, message",
    [
        (
            ["MODEL.BACKBONE.NAME", "resnet50"],
            "has shape (512, 1280) but the model has (512, 2048)",
        ),
        (
            ["MODEL.HEADS.EMBEDDING_DIM", "256"],
            "has shape (512, 1280) but the model has (256, 1280)",
        ),
    ],
)
def test_checkpoint_of_another_architecture_is_a_clear_error(
    opts, message, markets, trained_on_a, tmp_path, capsys
):
    """The message names the file, the first weight that differs and both shapes."""
    a, _ = markets
    weights = trained_on_a / "model_final.pth"
    assert train_net.cli(eval_args(a, tmp_path / "ev", weights, *opts)) == 2
    err = capsys.readouterr().err
    assert "dgnet_plugin error (CheckpointError)" in err and f"'{weights}'" in err
    assert "'classifier.bottleneck.0.weight'" in err and message in err
    if "resnet50" in opts:
        assert "also lacks" in err and "backbone." in err


def test_eval_only_without_weights_is_a_clear_error(markets, tmp_path, capsys):
    a, _ = markets
    args = ["--config-file", IDE, "--eval-only", *cli_opts(a, tmp_path / "ev")]
    assert train_net.cli(args) == 2
    assert "MODEL.WEIGHTS" in capsys.readouterr().err
