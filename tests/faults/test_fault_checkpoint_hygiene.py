"""Newest complete checkpoint, stale temp files, keep-N, finite state, save failures."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from dgnet_plugin.utils.checkpoint import (
    Checkpointer,
    CheckpointError,
    CheckpointSaveError,
    NonFiniteStateError,
    atomic_torch_save,
    check_fresh_start,
    first_non_finite,
    format_size,
    newest_complete_checkpoint,
    prune_checkpoints,
    read_checkpoint_iteration,
    remove_stale_files,
    save_failure_message,
)


@pytest.fixture
def log(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("dgnet_plugin"), "propagate", True)
    caplog.set_level(logging.INFO)
    return caplog


def _save(folder, name, iteration, **extra):
    path = os.path.join(folder, f"{name}.pth")
    atomic_torch_save(
        {"model": {"w": torch.full((4,), float(iteration))}, "iteration": iteration, **extra}, path
    )
    return path


def _tag(folder, name):
    (folder / "last_checkpoint").write_text(f"{name}.pth")


# ------------------------------------------------------------------ newest complete
def test_newest_complete_wins_over_a_lagging_last_checkpoint(tmp_path, log):
    for it in (100, 200, 300):
        _save(tmp_path, f"model_{it:07d}", it)
    _tag(tmp_path, "model_0000100")  # crash between the rename and the tag update
    info = newest_complete_checkpoint(str(tmp_path))
    assert info.path == str(tmp_path / "model_0000300.pth") and info.iteration == 300
    assert "last_checkpoint names" in log.text and "model_0000300.pth" in log.text


def test_a_truncated_newest_file_is_skipped_with_a_warning(tmp_path, log):
    _save(tmp_path, "model_0000100", 100)
    full = _save(tmp_path, "model_0000200", 200)
    data = open(full, "rb").read()
    with open(full, "wb") as f:
        f.write(data[: len(data) // 2])
    (tmp_path / "model_0000300.pth").write_bytes(b"")  # empty
    (tmp_path / "notes.pth").write_bytes(b"not a zip")
    atomic_torch_save({"model": {}}, str(tmp_path / "no_iter.pth"))
    _tag(tmp_path, "model_0000200")
    info = newest_complete_checkpoint(str(tmp_path))
    assert info.path == str(tmp_path / "model_0000100.pth") and info.iteration == 100
    for name in ("model_0000200.pth", "model_0000300.pth", "notes.pth", "no_iter.pth"):
        assert "skipping" in log.text and name in log.text
    with pytest.raises(CheckpointError, match="cannot read checkpoint '.*model_0000200.pth'"):
        read_checkpoint_iteration(full)
    with pytest.raises(CheckpointError, match="no integer 'iteration'"):
        read_checkpoint_iteration(str(tmp_path / "no_iter.pth"))


def test_model_final_counts_and_temp_files_do_not(tmp_path):
    _save(tmp_path, "model_0000100", 100)
    _save(tmp_path, "model_final", 150)
    _save(tmp_path, ".tmp-abc", 999)  # a complete but unrenamed temp file
    assert newest_complete_checkpoint(str(tmp_path)).path == str(tmp_path / "model_final.pth")
    assert newest_complete_checkpoint(str(tmp_path / "missing")) is None


def test_tie_goes_to_the_most_recent_file(tmp_path):
    a = _save(tmp_path, "model_0000100", 100)
    b = _save(tmp_path, "model_final", 100)
    os.utime(a, (1000, 1000))
    os.utime(b, (2000, 2000))
    assert newest_complete_checkpoint(str(tmp_path)).path == b


# ------------------------------------------------------------------ stale files, pruning
def test_remove_stale_temp_and_empty_files(tmp_path, log):
    keep = _save(tmp_path, "model_0000100", 100)
    (tmp_path / ".tmp-x1y2.pth").write_bytes(b"half a checkpoint")
    (tmp_path / ".tmp-last").write_text("model_")
    (tmp_path / "model_0000200.pth").write_bytes(b"")
    (tmp_path / "log.txt").write_text("")  # empty but not a checkpoint: kept
    removed = remove_stale_files(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == [
        ".tmp-last",
        ".tmp-x1y2.pth",
        "model_0000200.pth",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt", os.path.basename(keep)]
    assert log.text.count("left by an interrupted save") == 3
    assert remove_stale_files(str(tmp_path)) == []


def test_prune_keeps_the_last_n_plus_final_and_the_tagged_one(tmp_path):
    for it in (100, 200, 300, 400, 500):
        _save(tmp_path, f"model_{it:07d}", it)
    _save(tmp_path, "model_final", 600)
    _save(tmp_path, "teacher", 1)
    _tag(tmp_path, "model_0000100")  # e.g. a resumed run whose tag still names an old one
    removed = prune_checkpoints(str(tmp_path), 2)
    assert sorted(os.path.basename(p) for p in removed) == [
        "model_0000200.pth",
        "model_0000300.pth",
    ]
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == [
        "model_0000100.pth",
        "model_0000400.pth",
        "model_0000500.pth",
        "model_final.pth",
        "teacher.pth",
    ]
    assert (
        prune_checkpoints(str(tmp_path), 0) == [] and prune_checkpoints(str(tmp_path), None) == []
    )
    with pytest.raises(ValueError, match="keep must be >= 0"):
        prune_checkpoints(str(tmp_path), -1)


def test_checkpointer_prunes_and_logs_sizes(tmp_path, log):
    m = torch.nn.Linear(10, 10)  # 110 floats: 440 bytes of weights
    ck = Checkpointer(m, str(tmp_path), max_to_keep=2)
    for it in (1, 2, 3):
        ck.save(f"model_{it:07d}", iteration=it)
    ck.save("model_final", iteration=3)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == [
        "model_0000002.pth",
        "model_0000003.pth",
        "model_final.pth",
    ]
    size = os.path.getsize(tmp_path / "model_final.pth")
    assert f"Saved checkpoint {tmp_path / 'model_final.pth'} ({format_size(size)})" in log.text
    assert ck.get_checkpoint_file() == str(tmp_path / "model_final.pth")


def test_format_size():
    assert format_size(0) == "0 B"
    assert format_size(999) == "999 B"
    assert format_size(1500) == "1.5 kB"
    assert format_size(123_456_789) == "123.5 MB"
    assert format_size(2_500_000_000_000) == "2500.0 GB"


def test_fresh_start_in_a_folder_with_checkpoints_is_refused_unless_overwrite(tmp_path):
    check_fresh_start(str(tmp_path / "missing"), resume=False)
    check_fresh_start(str(tmp_path), resume=False)  # empty folder
    _save(tmp_path, "model_0000100", 100)
    _tag(tmp_path, "model_0000100")
    (tmp_path / "config.yaml").write_text("x: 1")
    check_fresh_start(str(tmp_path), resume=True)
    with pytest.raises(CheckpointError, match=r"already holds checkpoints \(model_0000100.pth\)"):
        check_fresh_start(str(tmp_path), resume=False)
    _save(tmp_path, "model_final", 200)
    _save(tmp_path, "teacher", 1)  # not a name this checkpointer writes: kept
    with pytest.raises(CheckpointError, match=r"\(model_0000100.pth, model_final.pth\)"):
        check_fresh_start(str(tmp_path), resume=False)
    check_fresh_start(str(tmp_path), resume=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "teacher.pth"]
    check_fresh_start(str(tmp_path), resume=False)


# ------------------------------------------------------------------ finite state
def test_first_non_finite_names_the_first_bad_entry():
    inf = torch.tensor([1e38], dtype=torch.float32) * 10  # overflows to inf
    assert torch.isinf(inf).all()
    sd = {"a.weight": torch.ones(3), "b.weight": inf, "c.bias": torch.tensor([float("nan")])}
    assert first_non_finite(sd) == "b.weight"
    assert first_non_finite({"a": torch.ones(2), "steps": torch.tensor([3])}) is None
    assert (
        first_non_finite({"x": [torch.ones(1), (torch.ones(1), torch.tensor(float("nan")))]})
        == "x.1.1"
    )
    assert (
        first_non_finite({"scale": float("inf")}, prefix="grad_scaler_main")
        == "grad_scaler_main.scale"
    )
    assert first_non_finite(torch.zeros(0)) is None


def test_first_non_finite_of_a_module_optimizer_and_grad_scaler():
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert first_non_finite(m) is None
    with torch.no_grad():
        m[1].running_var[1] = float("nan")
    assert first_non_finite(m) == "1.running_var"
    opt = torch.optim.Adam(m.parameters())
    m(torch.randn(4, 2)).sum().backward()
    opt.step()
    opt.state[m[0].weight]["exp_avg"][0, 0] = float("inf")
    assert first_non_finite(opt) == "state.0.exp_avg"
    scaler = torch.amp.GradScaler("cpu")
    assert first_non_finite(scaler) is None
    state = {**scaler.state_dict(), "scale": float("inf")}
    scaler.load_state_dict(state)
    assert first_non_finite({"grad_scaler_main": scaler}) == "grad_scaler_main.scale"
    assert first_non_finite({"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 0}) is None


def test_save_refuses_non_finite_state_and_names_the_last_good_checkpoint(tmp_path):
    m = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    ck = Checkpointer(m, str(tmp_path), optimizer=opt)
    good = ck.save("model_0000010", iteration=10)
    with torch.no_grad():
        m.bias[0] = float("nan")
    with pytest.raises(NonFiniteStateError) as e:
        ck.save("model_0000020", iteration=20)
    msg = str(e.value)
    assert "'model.bias' holds NaN/Inf" in msg and f"finite weights is {good}" in msg
    assert not (tmp_path / "model_0000020.pth").exists()
    assert ck.get_checkpoint_file() == good
    assert isinstance(e.value, CheckpointError)  # a user error (exit status 2)


# ------------------------------------------------------------------ save failures
def test_a_failed_save_names_the_path_the_reason_and_the_intact_previous(tmp_path, monkeypatch):
    ck = Checkpointer(torch.nn.Linear(2, 2), str(tmp_path))
    good = ck.save("model_0000010", iteration=10)

    def full(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointSaveError) as e:
        ck.save("model_0000020", iteration=20)
    monkeypatch.undo()
    path = tmp_path / "model_0000020.pth"
    assert str(e.value) == (
        f"cannot write {path}: No space left on device; {good} is intact; "
        "free space or fix permissions, then --resume"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000010.pth"]
    assert read_checkpoint_iteration(good) == 10


def test_a_failed_first_save_says_there_is_no_earlier_checkpoint(tmp_path):
    msg = save_failure_message(
        "/x/model_0000001.pth", PermissionError(13, "Permission denied"), None
    )
    assert msg.startswith(
        "cannot write /x/model_0000001.pth: Permission denied; no earlier checkpoint"
    )
    assert save_failure_message("/p", RuntimeError("odd"), "/q").startswith(
        "cannot write /p: odd; /q is intact"
    )
