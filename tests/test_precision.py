"""Mixed precision, speed options and the benchmark of the training step, on CPU.

The CUDA paths themselves (bf16 / fp16 autocast, channels_last, inductor compile) are in
test_cuda.py. Here: ``SOLVER.AMP`` validation, the CPU no-ops, the fp16 GradScaler logic
(run on CPU, where autocast fp16 and GradScaler also exist), the fp32 regulariser under
autocast, ``torch.compile`` wiring (the ``aot_eager`` backend needs no C++ compiler), fused
optimisers, the absence of host synchronisation in ``run_step``, and the benchmark script.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys

import pytest
import torch
from conftest import REPO, import_benchmark, small_cfg
from test_gradient_flow import batch, tiny_cfg

from dgnet_plugin.config import ConfigError
from dgnet_plugin.engine.optim import build_adam, restore_impl
from dgnet_plugin.engine.precision import PhaseUpdater, check_amp
from dgnet_plugin.methods.dgnet import DGNetEngine
from dgnet_plugin.modeling import build_model


def engine_cfg(tiny_market, tmp_path, *opts, teacher: bool = False):
    """The small CPU config with every loss term on from iteration 2 (the ramped terms enter one
    iteration after their weight leaves 0, as the official code); the teacher terms only
    with ``teacher`` (the test then gives the engine a teacher)."""
    cfg = small_cfg(tiny_market, tmp_path, *opts)
    cfg.LOSS.WARM_ITER = cfg.LOSS.WARM_TEACHER_ITER = 0
    cfg.LOSS.WARM_SCALE = 10.0
    if not teacher:
        cfg.LOSS.TEACHER_MAX = 0.0
    cfg.freeze()
    return cfg


def use_synthetic_batches(engine) -> None:
    """Random image batches instead of the loaders (fast; the data path is not under test)."""
    stream = iter(lambda: batch(0), None)
    engine.data = zip(stream, stream)


def params_of(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def unchanged(module, before) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), before))


# ----------------------------------------------------------------------------- SOLVER.AMP
@pytest.mark.parametrize("value", ["bf16", "fp16", "off"])
def test_amp_values_are_accepted(value):
    assert check_amp(value) == value


@pytest.mark.parametrize("value", ["fp32", "BF16", "amp", ""])
def test_unknown_amp_value_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"SOLVER\.AMP .*bf16 \| fp16 \| off"):
        check_amp(value)


def test_engine_rejects_an_unknown_amp_value_before_reading_data(tmp_path):
    cfg = small_cfg(tmp_path / "no_data_here", tmp_path, "SOLVER.AMP", "half")
    with pytest.raises(ConfigError, match=r"SOLVER\.AMP 'half'"):
        DGNetEngine(cfg)


@pytest.mark.parametrize("value", ["bf16", "fp16", "off"])
def test_cpu_runs_in_float32_whatever_the_amp_setting(value):
    amp = PhaseUpdater.for_device(value, torch.device("cpu"), ("dis", "gen"))
    assert amp.dtype is None and amp.scalers == {} and amp.describe() == "float32"
    assert isinstance(amp.autocast(), contextlib.nullcontext)
    assert amp.checkpointables() == {} and amp.scales() == {}


def test_cpu_engine_logs_that_the_cuda_options_are_off(tiny_market, tmp_path, caplog):
    cfg = engine_cfg(tiny_market, tmp_path, "SOLVER.AMP", "fp16", "MODEL.COMPILE", "True")
    with caplog.at_level(logging.INFO, logger="dgnet_plugin"):
        engine = DGNetEngine(cfg)
    assert "float32; SOLVER.AMP=fp16" in caplog.text and "apply to CUDA only" in caplog.text
    # MODEL.COMPILE is a no-op on CPU: nothing compiled, plain parameters
    assert not engine.speed.compile and not engine.model.compiled
    assert not engine.speed.channels_last
    conv = next(m for m in engine.model.dis.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()
    assert engine.amp.dtype is None


# ----------------------------------------------------------------------------- fp16 GradScaler
def test_fp16_overflowed_phase_is_skipped_without_tripping_the_nan_guard(tiny_market, tmp_path):
    """The fp16 loss scaling run on CPU: D's scaler starts at a scale that overflows the
    scaled loss, G's at an ordinary one. D's step is skipped and its scale halved; G and Ea
    train; the logged losses are finite and unscaled, so the non-finite-loss guard does not
    fire. (Scalers only: fp16 autocast kernels are slow on CPU; test_cuda.py runs both.)"""
    engine = DGNetEngine(engine_cfg(tiny_market, tmp_path))
    engine.amp = PhaseUpdater("fp16", "cpu", engine.AMP_PHASES)
    engine.amp.dtype = None  # float32 compute, fp16-mode scalers
    engine.amp.scalers["dis"] = torch.amp.GradScaler("cpu", init_scale=3e38)
    engine.amp.scalers["gen"] = torch.amp.GradScaler("cpu", init_scale=1024.0)
    engine.model.train()
    use_synthetic_batches(engine)
    m = engine.model
    before = {k: params_of(getattr(m, k)) for k in ("dis", "gen", "reid")}

    losses = engine.run_step(2)  # the ramped terms enter at iteration 2 (official order)

    assert unchanged(m.dis, before["dis"])  # D step skipped
    assert not unchanged(m.gen, before["gen"]) and not unchanged(m.reid, before["reid"])
    scales = engine.amp.scales()
    assert scales["loss_scale_dis"] == pytest.approx(1.5e38)
    assert scales["loss_scale_gen"] == 1024.0
    assert {"dis_adv", "dis_reg", "recon_f", "cycle", "total"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["total"] < 1e4  # the unscaled loss is what is logged
    from dgnet_plugin.engine.hooks import MetricsWriter

    writer = MetricsWriter(period=1)
    engine.register_hooks([writer])
    engine.step_outputs = losses
    writer._sums = {k: v.detach().float() for k, v in losses.items()}
    writer._count = 1
    writer.write(None)  # the guard: raises NonFiniteLossError on a NaN/Inf loss
    # the scalers are checkpointed and restored
    assert set(engine.amp.checkpointables()) == {"grad_scaler_dis", "grad_scaler_gen"}
    assert {"grad_scaler_dis", "grad_scaler_gen"} <= set(engine.checkpointer.checkpointables)


def test_regulariser_runs_in_float32_under_autocast():
    """Under low-precision autocast D scores the fakes in low precision, but the real-image
    pass and its gradient regulariser run in float32."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg(), 6).train()
    dtypes = []
    model.dis.register_forward_hook(lambda mod, args, out: dtypes.append(out[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch(0), batch(1))
        d = model.discriminator_losses(out)
    assert dtypes == [torch.bfloat16, torch.float32]  # fake pass, real pass
    assert d["dis_reg"].dtype == torch.float32 and torch.isfinite(d["dis_reg"])
    assert d["dis_adv"].dtype == torch.float32
    sum(d.values()).backward()
    assert all(p.grad is not None for p in model.dis.parameters())


# ----------------------------------------------------------------------------- torch.compile
def test_compile_keeps_state_dict_and_runs_the_regulariser_eagerly(tmp_path):
    """``compile_networks`` (here with the ``aot_eager`` backend: no C++ compiler needed)
    leaves parameters and state_dict keys alone, and the double backward of the gradient
    regulariser works although compiled graphs do not support it."""
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.MODEL.DIS.NUM_SCALES = 2
    model = build_model(cfg, 6).train()
    keys = list(model.state_dict())
    params = [id(p) for p in model.parameters()]
    model.compile_networks(backend="aot_eager")
    assert model.compiled
    assert list(model.state_dict()) == keys and [id(p) for p in model.parameters()] == params
    torch.save(model.state_dict(), tmp_path / "m.pth")
    fresh = build_model(cfg, 6)
    fresh.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True), strict=True)

    weights = {k: 1.0 for k in ("gan", "recon_x", "recon_xp", "recon_f", "recon_s", "cycle")}
    weights.update({k: 1.0 for k in ("recon_id", "id", "id_fine", "id_pos", "fine")})
    weights["teacher_kl"] = 0.0
    out = model(batch(0), batch(1))
    d = model.discriminator_losses(out)
    sum(d.values()).backward()
    assert torch.isfinite(d["dis_reg"]) and d["dis_reg"] > 0
    g = model.generator_losses(out, weights)  # frozen D and Es through the compiled modules
    sum(g.values()).backward()
    assert all(torch.isfinite(v) for v in g.values())
    assert all(p.grad is not None for p in model.gen.decoder.parameters())


# ----------------------------------------------------------------------------- optimisers
def test_fused_optimiser_survives_a_checkpoint_without_the_flag():
    net = torch.nn.Linear(4, 3)
    cfg = tiny_cfg().SOLVER.GEN
    plain = build_adam(net, cfg)  # torch's default implementation
    fast = build_adam(net, cfg, torch.device("cpu"))
    assert fast.defaults["fused"] and all(g["fused"] for g in fast.param_groups)
    assert [g["lr"] for g in fast.param_groups] == [g["lr"] for g in plain.param_groups]
    net(torch.randn(2, 4)).sum().backward()
    plain.step()
    fast.load_state_dict(plain.state_dict())  # takes fused=None from the checkpoint
    assert not any(g["fused"] for g in fast.param_groups)
    restore_impl(fast)
    assert all(g["fused"] for g in fast.param_groups)
    fast.step()


# ----------------------------------------------------------------------------- host syncs
SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


def test_run_step_never_reads_a_tensor_on_the_host(tiny_market, tmp_path, monkeypatch):
    """No ``.item()``, ``float(t)``, ``bool(t)`` (``if t``), ``.tolist()``, ``.cpu()`` ... in
    the package's code during a DG-Net step: on CUDA each would stall the GPU queue."""
    engine = DGNetEngine(engine_cfg(tiny_market, tmp_path, teacher=True))
    engine.model.train()
    engine.set_teacher(build_model(tiny_cfg("IDEBaseline"), engine.num_classes).eval())
    use_synthetic_batches(engine)
    calls = []
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "dgnet_plugin" in caller:
                calls.append(f"{_name} in {caller}:{sys._getframe(1).f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    losses = engine.run_step(2)  # the ramped terms enter at iteration 2 (official order)
    assert {"teacher_kl", "fine", "cycle", "dis_reg"} <= set(losses)
    assert calls == []


# ----------------------------------------------------------------------------- benchmark
def test_benchmark_smallest_setting_prints_its_figures():
    p = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_train_step.py")]
        + ["--config", "tiny", "--iters", "2", "--warmup", "1", "--device", "cpu"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [line for line in p.stdout.splitlines() if line.startswith("| tiny")]
    assert len(rows) == 2, p.stdout
    ref, ours = ([c.strip() for c in r.strip("|").split("|")] for r in rows)
    assert ref[2].startswith("reference") and ours[2].startswith("dgnet_plugin")
    for row in (ref, ours):
        sec, ips, peak = (float(x) for x in row[3:6])
        assert sec > 0 and ips > 0 and peak > 0
        assert row[6].endswith("x") and float(row[7]) > 0 and row[8] == "yes"
    for header in ("s / iter", "images / s", "peak GB", "speed-up", "CPU s / iter"):
        assert header in p.stdout
    assert "tiny on cpu: the targets are for the official config on an H100" in p.stdout


def test_benchmark_target_verdict(monkeypatch):
    bench = import_benchmark("bench_train_step")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    line = bench.target_verdict("official", "cuda:0", 0.21, 9.5, 2.4)
    assert line.startswith("official on NVIDIA H100 80GB HBM3")
    assert "0.210 s/iter (target <= 0.25: met)" in line
    assert "peak 9.50 GB (target <= 10: met)" in line
    assert "2.40x the reference (target >= 3x: NOT met)" in line
    line = bench.target_verdict("official", "cuda:0", 0.3, 12.0, 3.0)
    assert line.count("NOT met") == 2 and "3.00x the reference (target >= 3x: met)" in line
    assert "do not" not in bench.target_verdict("official", "cuda", 0.1, 1.0, 9.0)
    assert "targets are for the official config" in bench.target_verdict("cpu", "cuda", 1, 1, 1)
    assert "targets are for the official config" in bench.target_verdict("official", "cpu", 1, 1, 1)


def test_benchmark_profile_breakdown(capsys):
    bench = import_benchmark("bench_train_step")
    args = type("Args", (), dict(device="cpu", iters=1, warmup=0, amp=None, top=5))()
    bench.profile("tiny", args)
    out = capsys.readouterr().out
    for category in ("network", "optimizer", "data", "losses & glue ops", "python & framework"):
        assert f"| {category}" in out
    assert "largest share outside the networks" in out
