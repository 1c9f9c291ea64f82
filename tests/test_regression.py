"""Nothing changes for DG-Net users: the per-term losses of the first iterations of a seeded
DG-Net run and of a seeded IDE (softmax) run on the real CUHK03 subset, and the keys and
shapes of the checkpoint DG-Net writes, equal what the package gave before the method-package
move (recorded by ``DGNET_RECORD_REGRESSION=1 pytest tests/test_regression.py``).

Through ``tools/train_net.py`` and ``metrics.json`` only, so the recording does not depend on
the package's internal layout. CPU, no loader workers: the runs are deterministic on one
machine, but float32 results differ in their last digits between CPU instruction sets
(``ATEN_CPU_CAPABILITY``), BLAS builds and thread counts, so the recording is compared with
relative tolerances chosen from the spread measured across kernels (:data:`RTOL`; the
fixture's notes give the figures). The fixture's top-level ``"notes"`` list (ignored by the
comparison) says, for each re-recording, which terms changed and why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import train_net
from conftest import NO_WARMUP_OPTS, REPO, cli_opts

from dgnet_plugin.utils.events import read_json_lines

FIXTURE = Path(__file__).parent / "fixtures" / "regression_losses.json"
RECORD = os.environ.get("DGNET_RECORD_REGRESSION") == "1"
DGNET = str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml")
IDE = str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml")
ITERS = 4
#: loss terms renamed by the method-package move: old name -> new name
RENAMED = {"pid": "id_pos"}
#: relative tolerance per (run, iteration; None = the other iterations): the spread measured
#: across the ``default``, ``avx2`` and ``avx512`` kernels at 1 and 2 threads (fixture notes),
#: times 4 or more. IDE (SGD): 1.9e-7, 9.2e-5, 1.7e-4, 3.9e-3 at iterations 1-4. DG-Net,
#: iteration 1 (every term from the initial weights): at most 4.8e-5 -> 2e-4; a changed loss
#: weight moves ``total`` by 5e-3 or more (LOSS.RECON_ID 0.5 -> 0.55: 5.7e-3). DG-Net,
#: iterations 2-4: Adam's first steps (about lr * sign(g)) turn last-digit differences of
#: near-zero gradients into different updates, so the per-term spread reaches 1e-1 (teacher_kl:
#: 1.1): only ``total`` is compared there (spread 1.6e-2 -> 6e-2). Gradient routing (detaches)
#: is tested by tests/test_gradient_flow.py, not here: LOSS.RECON_F_GRAD True moves iteration 3
#: by less than the kernel spread.
RTOL = {
    ("ide", 1): 1e-5,
    ("ide", None): 1e-3,
    ("ide", 4): 2e-2,
    ("dgnet", 1): 2e-4,
    ("dgnet", None): 6e-2,
}
#: DG-Net terms compared after iteration 1
LATER_TERMS = {"dgnet": ("total",), "ide": None}
#: the demo recipes as recorded (the demo configs have moved on since: issue 11's faster
#: generator and teacher settings); pinned here so the recording keeps testing the code
RECORDED_IDE = ["LOSS.LABEL_SMOOTH", "0.0", "INPUT.REA.PROB", "0.5"]
RECORDED_DGNET = [
    *("MODEL.EA_FUSED_FORWARD", "False", "MODEL.GEN.N_DOWNSAMPLE", "2"),
    *("MODEL.TEACHER.INIT_EA", "False", "VIS.QUALITY_PERIOD", "0"),
    *("MODEL.HEADS.POOL", "max", "SOLVER.REID.BASE_LR", "0.00035"),
    *("SOLVER.GEN.LR", "0.0001", "SOLVER.GEN.BETAS", "(0.0, 0.999)"),
    *("SOLVER.GEN.WEIGHT_DECAY", "0.0005", "SOLVER.DIS.LR", "0.0001"),
    *("SOLVER.DIS.BETAS", "(0.0, 0.999)", "SOLVER.DIS.WEIGHT_DECAY", "0.0005"),
    *("MODEL.NORM", "BN", "SOLVER.REID.HEADS_LR_FACTOR", "10.0"),
]


def _opts(root, out, *extra):
    return [
        *cli_opts(root, out),
        "SOLVER.MAX_ITER",
        str(ITERS),
        "SOLVER.CHECKPOINT_PERIOD",
        "100",
        "VIS.PERIOD",
        "0",
        "VIS.NUM_IMAGES",
        "4",
        *extra,
    ]


def _losses(out: Path) -> dict[str, dict[str, float]]:
    recs = [
        r for r in read_json_lines(str(out / "metrics.json")) if "lr_model" in r or "total" in r
    ]
    keep = lambda k: k not in ("iteration", "time") and not k.startswith("lr_")  # noqa: E731
    return {str(r["iteration"]): {k: v for k, v in r.items() if keep(k)} for r in recs}


def _checkpoint_layout(path: Path) -> dict:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    return {
        "top": sorted(ck),
        "model": {k: list(v.shape) for k, v in ck["model"].items()},
    }


@pytest.fixture(scope="module")
def runs(tiny_market, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression")
    ide = tmp / "ide"
    args = [
        "--config-file",
        IDE,
        *_opts(tiny_market, ide, "SOLVER.IMS_PER_BATCH", "8", *RECORDED_IDE),
    ]
    assert train_net.cli(args) == 0
    dgnet = tmp / "dgnet"
    extra = [
        "MODEL.TEACHER.WEIGHTS",
        str(ide / "model_final.pth"),
        "MODEL.TEACHER.CONFIG",
        str(ide / "config.yaml"),
        "SOLVER.IMS_PER_BATCH",
        "3",
        *NO_WARMUP_OPTS,
        *RECORDED_DGNET,
    ]
    assert train_net.cli(["--config-file", DGNET, *_opts(tiny_market, dgnet, *extra)]) == 0
    got = {
        "ide": _losses(ide),
        "dgnet": _losses(dgnet),
        "dgnet_checkpoint": _checkpoint_layout(dgnet / "model_final.pth"),
    }
    if RECORD:  # keep the notes: one per deliberate change of the recorded losses
        notes = json.loads(FIXTURE.read_text()).get("notes", []) if FIXTURE.exists() else []
        FIXTURE.write_text(json.dumps({**got, "notes": notes}, indent=1, sort_keys=True) + "\n")
    return got


def _renamed(terms: dict) -> dict:
    return {RENAMED.get(k, k): v for k, v in terms.items()}


@pytest.mark.e2e
@pytest.mark.parametrize("run", ["ide", "dgnet"])
def test_losses_equal_the_recording(runs, run):
    want = json.loads(FIXTURE.read_text())
    exact = {it: _renamed(terms) for it, terms in want[run].items()}  # the recording, new names
    assert sorted(runs[run]) == sorted(exact) == [str(i) for i in range(1, ITERS + 1)]
    for it, terms in exact.items():
        assert set(runs[run][it]) == set(terms), it
        rtol = RTOL.get((run, int(it)), RTOL[(run, None)])
        compared = terms if int(it) == 1 or LATER_TERMS[run] is None else LATER_TERMS[run]
        for k in compared:
            got, v = runs[run][it][k], terms[k]
            assert got == pytest.approx(v, rel=rtol, abs=1e-7), (run, it, k, got, v, rtol)


@pytest.mark.e2e
def test_checkpoints_of_the_recording_still_load(runs):
    """Same state-dict keys and shapes, same checkpointables: a file written before the move
    loads strictly (and resumes) after it."""
    want = json.loads(FIXTURE.read_text())["dgnet_checkpoint"]
    assert runs["dgnet_checkpoint"] == want
