"""Helpers of the torchreid-engine tests: real CUHK03 crops under torchreid's own
``market1501`` folder name, and small torchreid data managers on them."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import torch
from conftest import make_tiny_market

from dgnet_plugin.utils import torchreid_compat as tr

MARKET_DIR = ("market1501", "Market-1501-v15.09.15")


def make_torchreid_market(root: Path, n_train_ids: int = 4, n_test_ids: int = 12) -> Path:
    """``root/market1501/Market-1501-v15.09.15/`` of symlinks to real CUHK03 crops (the
    Market-layout copy in ../shared/data): torchreid's ``market1501`` dataset reads it.
    Returns ``root`` (torchreid's ``root``); the Market folder is ``market_folder(root)``."""
    make_tiny_market(market_folder(root), n_train_ids=n_train_ids, n_test_ids=n_test_ids)
    return root


def market_folder(root: Path) -> Path:
    return root.joinpath(*MARKET_DIR)


def datamanager(root: Path, size=(64, 32), batch: int = 8, k: int = 2, **kwargs):
    """torchreid's ImageDataManager on ``market1501`` under ``root``, P x K batches."""
    args = dict(
        root=str(root),
        sources="market1501",
        height=size[0],
        width=size[1],
        batch_size_train=batch,
        batch_size_test=64,
        workers=0,
        use_gpu=False,
        train_sampler="RandomIdentitySampler",
        num_instances=k,
        transforms=["random_flip"],
    )
    args.update(kwargs)
    return tr.ImageDataManager(**args)


def make_torchreid_sysu(root: Path) -> Path:
    """``root/SYSU-MM01/`` in the SYSU-MM01 layout from the real crops of ``vi_reid_samples``
    (symbolic links), read by the plugin's ``sysu_mm01`` torchreid dataset: training = the 5
    people of ``sysu_mm01_aligngan_figure`` (ids 101-105, 4 visible + 4 infrared each; the
    figure gives no cameras: visible image ``k`` -> camera ``(1, 2, 4, 5)[k]``, infrared ``k``
    -> ``(3, 6)[k % 2]``), test = the 5 people of ``sysu_mm01_example`` (ids 1-5, 2 images
    per camera 1-6, their own cameras). Returns ``root`` (torchreid's ``root``)."""
    import csv

    from conftest import VI_REID

    out = root / "SYSU-MM01"
    counters: dict = {}

    def link(src: Path, pid: int, cam: int) -> None:
        folder = out / f"cam{cam}" / f"{pid:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        k = counters[pid, cam] = counters.get((pid, cam), 0) + 1
        (folder / f"{k:04d}{src.suffix}").symlink_to(src)

    for name in ("sysu_mm01_aligngan_figure", "sysu_mm01_example"):
        with open(VI_REID / name / "labels.csv", newline="") as f:
            for r in sorted(csv.DictReader(f), key=lambda r: r["file"]):
                src = VI_REID / name / r["file"]
                if r["camera"]:
                    link(src, int(r["person_id"]), int(r["camera"]))
                else:
                    pid, k = 100 + int(r["person_id"]), int(src.stem.rsplit("_", 1)[1])
                    cams = (1, 2, 4, 5) if r["modality"] == "visible" else (3, 6, 3, 6)
                    link(src, pid, cams[k])
    (out / "exp").mkdir()
    (out / "exp" / "train_id.txt").write_text("101,102,103,104,105\n")
    (out / "exp" / "val_id.txt").write_text("\n")
    (out / "exp" / "test_id.txt").write_text("1,2,3,4,5\n")
    return root


class StepRecorder:
    """Wraps each optimiser's ``step``: after every step records ``(phase, networks whose
    parameters changed since the previous record)``."""

    def __init__(self, optimizers: dict, networks: dict):
        self.networks, self.events = networks, []
        self._snap = self._snapshot()
        for name, opt in optimizers.items():
            opt.step = self._wrap(name, opt.step)

    def _snapshot(self):
        return {n: [p.detach().clone() for p in m.parameters()] for n, m in self.networks.items()}

    def _wrap(self, phase, step):
        def wrapped(*a, **k):
            out = step(*a, **k)
            now = self._snapshot()
            changed = {
                n
                for n in now
                if any(not torch.equal(x, y) for x, y in zip(now[n], self._snap[n], strict=True))
            }
            self.events.append((phase, frozenset(changed)))
            self._snap = now
            return out

        return wrapped


def same_update(ours: torch.nn.Module, theirs: torch.nn.Module, it: int, loss_diff: float):
    """Every parameter's gradient (or its absence) and value after the step equal (within
    1e-6); prints the largest differences."""
    theirs_p = dict(theirs.named_parameters())
    grad_diff, upd = 0.0, 0.0
    for k, p in ours.named_parameters():
        g, h = p.grad, theirs_p[k].grad
        if g is None or h is None:  # a network the phase does not reach: no gradient in both
            assert g is None and h is None, k
            g = h = torch.zeros(())
        grad_diff = max(grad_diff, (g - h).abs().max().item())
        upd = max(upd, (p.detach() - theirs_p[k].detach()).abs().max().item())
    print(
        f"iteration {it}: max |loss difference| {loss_diff:.3g}, max |gradient difference| "
        f"{grad_diff:.3g}, max |parameter difference| after the step {upd:.3g}"
    )
    assert grad_diff <= 1e-6 and upd <= 1e-6


def run_example(script: str, argv: list, env: dict, monkeypatch, capsys) -> str:
    """Run ``examples/<script>`` as ``__main__`` with ``argv`` and the ``REID_*`` settings
    ``env`` (one short epoch, tiny images), from seed 1 (the examples set none, and
    torchreid's samplers draw from the global generators: the outcome depended on the tests
    that ran before; from seed 0 the D2RL example draws a batch with one identity in both
    modalities, where the triplet loss has no negative); returns what it printed."""
    from conftest import REPO

    tr.utils.set_random_seed(1)
    for k, v in {"REID_EPOCHS": "1", "REID_WORKERS": "0", "REID_PRINT_FREQ": "1", **env}.items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.setattr(sys, "argv", [script, *map(str, argv)])
    runpy.run_path(str(REPO / "examples" / script), run_name="__main__")
    return capsys.readouterr().out


def same_step(ours: dict, theirs: dict, model, cli_model, it: int) -> None:
    """One iteration of a torchreid engine against the CLI's ``train_step``: the same loss
    terms (within 1e-5), then :func:`same_update` of the networks."""
    assert set(ours) == set(theirs)
    diffs = {k: abs(ours[k] - float(theirs[k])) for k in ours}
    assert max(diffs.values()) <= 1e-5, diffs
    same_update(model, cli_model, it, max(diffs.values()))
