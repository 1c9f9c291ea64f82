"""Atomic checkpoints, strict loading, RNG state."""

import os
import random

import numpy as np
import pytest
import torch

from dgnet_plugin.utils.checkpoint import (
    Checkpointer,
    CheckpointError,
    atomic_torch_save,
    rng_state,
    set_rng_state,
)


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    atomic_torch_save({"model": {"w": torch.ones(2)}}, str(path))

    def boom(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"model": {"w": torch.zeros(2)}}, str(path))
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]  # no temp file left


def test_save_load_roundtrip_with_optimizer_and_last_checkpoint(tmp_path):
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    ck = Checkpointer(m, str(tmp_path), optimizer=opt)
    ck.save("model_0000002", iteration=2, rng=rng_state())
    assert ck.has_checkpoint() and ck.get_checkpoint_file().endswith("model_0000002.pth")
    m2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    extra = Checkpointer(m2, str(tmp_path), optimizer=opt2).load(ck.get_checkpoint_file())
    assert extra["iteration"] == 2 and torch.equal(m.weight, m2.weight)
    assert opt2.state_dict()["state"][0]["momentum_buffer"] is not None


def test_strict_and_clear_load_errors(tmp_path):
    ck = Checkpointer(torch.nn.Linear(3, 2), str(tmp_path))
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.load(str(tmp_path / "missing.pth"))
    atomic_torch_save({"model": {"weight": torch.zeros(2, 3)}}, str(tmp_path / "partial.pth"))
    with pytest.raises(CheckpointError, match="lacks 1 weights"):
        ck.load(str(tmp_path / "partial.pth"))
    atomic_torch_save(
        {"model": {"weight": torch.zeros(5, 3), "bias": torch.zeros(5)}},
        str(tmp_path / "shape.pth"),
    )
    with pytest.raises(CheckpointError, match="shape"):
        ck.load(str(tmp_path / "shape.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        ck.load(str(tmp_path / "junk.pth"))


def test_rng_state_roundtrip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    atomic_torch_save({"rng": rng_state()}, str(tmp_path / "r.pth"))
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "r.pth", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    assert not os.path.exists(tmp_path / ".tmp")
