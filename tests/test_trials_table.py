"""tools/trials_table.py: RegDB's mean ± std over split trials from several OUTPUT_DIRs."""

import json

import numpy as np
import pytest

from dgnet_plugin.evaluation.cross_modality import aggregate_trials, trial_setting


def _run_dir(root, t: int, r1_v2t: float, map_v2t: float, engine="D2RLEngine"):
    """A fake OUTPUT_DIR of trial ``t``: config.yaml and metrics.json (two evaluations; the
    last counts), as train_net.py writes them (metrics in %, with the evaluator's own
    one-trial ``*_std`` / ``trials`` entries)."""
    d = root / f"t{t}"
    d.mkdir()
    (d / "config.yaml").write_text(f"ENGINE:\n  NAME: {engine}\n")
    ds = f"regdb_trial_{t}@RegDB" if t > 1 else "regdb@RegDB"
    first = {"iteration": 10, f"{ds} visible->thermal/Rank-1": 0.0}
    last = {"iteration": 20}
    for setting, r1, mp in (("visible->thermal", r1_v2t, map_v2t), ("thermal->visible", 50, 40)):
        for k, v in (("Rank-1", r1), ("Rank-10", 90.0), ("mAP", mp), ("mINP", 10.0)):
            last[f"{ds} {setting}/{k}"] = v
            last[f"{ds} {setting}/{k}_std"] = 0.0
        last[f"{ds} {setting}/trials"] = 1
    (d / "metrics.json").write_text(json.dumps(first) + "\n" + json.dumps(last) + "\n")
    return str(d)


def test_trial_setting_drops_the_trial_only():
    assert trial_setting("regdb_trial_10@x visible->thermal") == "regdb@x visible->thermal"
    assert trial_setting("regdb_trial_3 thermal->visible") == "regdb thermal->visible"
    assert trial_setting("regdb@x visible->thermal") == "regdb@x visible->thermal"
    assert trial_setting("sysu_mm01@x all-search single-shot") == (
        "sysu_mm01@x all-search single-shot"
    )


def test_aggregate_trials_mean_and_std_over_runs_by_hand():
    runs = [
        {"regdb_trial_1 v->t": {"Rank-1": 10.0, "Rank-1_std": 0.0, "trials": 1}},
        {"regdb_trial_2 v->t": {"Rank-1": 20.0, "Rank-1_std": 0.0, "trials": 1}},
        {"regdb_trial_3 v->t": {"Rank-1": 60.0, "Rank-1_std": 0.0, "trials": 1}, "other": {}},
    ]
    out = aggregate_trials(runs)
    assert list(out) == ["regdb v->t"]  # "other" is not in every run
    m = out["regdb v->t"]
    assert m["Rank-1"] == pytest.approx(30.0)
    assert m["Rank-1_std"] == pytest.approx(np.std([10, 20, 60]))  # over runs, not 0
    assert m["trials"] == 3
    with pytest.raises(ValueError, match="share no evaluated setting"):
        aggregate_trials([{"a": {"Rank-1": 1.0}}, {"b": {"Rank-1": 1.0}}])
    with pytest.raises(ValueError, match="no runs"):
        aggregate_trials([])


def test_trials_table_prints_one_table_with_mean_std_and_reported(tmp_path, capsys):
    import trials_table

    dirs = [
        _run_dir(tmp_path, t, r1, mp)
        for t, r1, mp in ((1, 40.0, 30.0), (2, 50.0, 35.0), (3, 60.0, 40.0))
    ]
    md = tmp_path / "table.md"
    assert trials_table.main([*dirs, "-o", str(md)]) == 0
    out = capsys.readouterr().out
    assert md.read_text() == out
    rows = [r for r in out.splitlines() if r.startswith("| D2RL (ours)")]
    assert len(rows) == 2  # both directions, one row each
    v2t = next(r for r in rows if "regdb@RegDB visible->thermal" in r)
    cells = [c.strip() for c in v2t.strip("|").split("|")]
    # model, setting, trials, Rank-1, Rank-10, Rank-20, mAP, mINP
    assert cells[2] == "3"
    assert cells[3] == f"50.00 ± {np.std([40, 50, 60]):.2f}"  # 8.16
    assert cells[5] == "–" and cells[6] == f"35.00 ± {np.std([30, 35, 40]):.2f}"
    assert "D2RL (reported)" in out and "43.40" in out  # published row beside ours


def test_trials_table_names_the_missing_file(tmp_path, capsys):
    import trials_table

    good = _run_dir(tmp_path, 1, 40.0, 30.0)
    assert trials_table.main([good, str(tmp_path / "missing")]) == 2
    assert "metrics.json" in capsys.readouterr().err
