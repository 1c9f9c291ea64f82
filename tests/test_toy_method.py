"""A method added by a test: tests/toy_gan/ (its own folder) plus one registration line
(``import toy_gan``), trained through tools/train_net.py with checkpoints and an exact
--resume, with no labels used, no re-ID network and no evaluation."""

from __future__ import annotations

import pytest
import toy_gan  # noqa: F401  (the registration line)
import train_net
from conftest import REPO, cli_opts

from dgnet_plugin.utils.events import read_json_lines


def toy_config(tmp_path) -> str:
    f = tmp_path / "toy_gan.yml"
    f.write_text(
        f"_BASE_: {REPO / 'configs' / 'Base-CUHK03-CPU-Demo.yml'}\n"
        "ENGINE:\n  NAME: ToyGANEngine\n"
        "INPUT:\n  SIZE_TRAIN: (16, 8)\n  SIZE_TEST: (16, 8)\n  PADDING: 0\n"
        "  REA:\n    PROB: 0.0\n"
        "DATALOADER:\n  IMS_PER_BATCH: 4\n"
        "SOLVER:\n  CHECKPOINT_PERIOD: 1\n"
        "VIS:\n  PERIOD: 2\n"
    )
    return str(f)


def losses(out):
    return {r["iteration"]: r for r in read_json_lines(str(out / "metrics.json")) if "time" in r}


@pytest.mark.e2e
def test_toy_gan_trains_checkpoints_and_resumes_exactly(tiny_market, tmp_path):
    cfg = toy_config(tmp_path)

    def run(out, iters, *extra):
        args = ["--config-file", cfg, *extra, *cli_opts(tiny_market, out)]
        return train_net.cli([*args, "SOLVER.MAX_ITER", str(iters)])

    assert run(tmp_path / "straight", 4) == 0
    resumed = tmp_path / "resumed"
    assert run(resumed, 2) == 0
    assert run(resumed, 4, "--resume") == 0

    a, b = losses(tmp_path / "straight"), losses(resumed)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]  # no iteration written twice
    for it in (3, 4):
        assert a[it]["gan"] == b[it]["gan"] and a[it]["dis_adv"] == b[it]["dis_adv"], it
    names = {p.name for p in resumed.iterdir()}
    assert {"model_0000001.pth", "model_final.pth", "config.yaml", "log.txt"} <= names
    assert (resumed / "images" / "samples_00000002.jpg").is_file()
    recs = read_json_lines(str(resumed / "metrics.json"))
    assert not any("Rank-1" in k for r in recs for k in r)  # no evaluation: no re-ID network
    log = (resumed / "log.txt").read_text()
    assert "Resumed from" in log and "Saved checkpoint" in log and " kB)" in log


def test_an_engine_paired_with_a_meta_architecture_lacking_what_it_needs(tiny_market, tmp_path):
    """ENGINE and META_ARCHITECTURE are checked against each other at build time."""
    args = ["--config-file", toy_config(tmp_path), *cli_opts(tiny_market, tmp_path / "bad")]
    args += ["MODEL.META_ARCHITECTURE", "IDEBaseline"]
    assert train_net.cli(args) == 2
    log = (tmp_path / "bad" / "log.txt").read_text()
    assert "ToyGANEngine' needs a meta-architecture with gen, dis" in log
