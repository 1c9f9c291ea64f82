"""CUDA paths: bf16 / fp16 autocast, GradScaler, channels_last, torch.compile and the absence
of host synchronisation in the DG-Net step. Skipped on machines without a GPU (the CPU side of
the same options is in test_precision.py)."""

import itertools

import pytest
import torch
from conftest import small_cfg
from test_gradient_flow import tiny_cfg

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (bf16/fp16 autocast, GradScaler, channels_last, compile)",
)


def cuda_engine(tiny_market, tmp_path, *opts, teacher=False):
    """A DG-Net engine on CUDA with every loss term on from iteration 1."""
    from dgnet_plugin.methods.dgnet import DGNetEngine
    from dgnet_plugin.modeling import build_model

    cfg = small_cfg(tiny_market, tmp_path, "MODEL.DEVICE", "cuda", *opts)
    cfg.LOSS.WARM_ITER = cfg.LOSS.WARM_TEACHER_ITER = 0
    cfg.LOSS.WARM_SCALE = 10.0
    if not teacher:
        cfg.LOSS.TEACHER_MAX = 0.0
    cfg.freeze()
    engine = DGNetEngine(cfg)
    if teacher:
        engine.set_teacher(build_model(tiny_cfg("IDEBaseline"), engine.num_classes).cuda().eval())
    engine.model.train()
    return engine


def real_pass_dtypes(engine) -> list:
    """Output dtypes of D's calls, recorded by a forward hook."""
    seen = []
    engine.model.dis.register_forward_hook(lambda m, a, out: seen.append(out[0].dtype))
    return seen


def test_bf16_dgnet_step_on_cuda(tiny_market, tmp_path):
    engine = cuda_engine(tiny_market, tmp_path)
    assert engine.amp.dtype == torch.bfloat16 and engine.amp.scalers == {}
    losses = [engine.run_step(it) for it in range(1, 4)]
    assert {"recon_f", "recon_s", "cycle", "dis_reg"} <= set(losses[-1])
    assert all(torch.isfinite(v).all() for step in losses for v in step.values())
    assert losses[-1]["dis_reg"].dtype == torch.float32  # the regulariser stays in fp32


def test_fp16_dgnet_step_with_grad_scalers(tiny_market, tmp_path):
    engine = cuda_engine(tiny_market, tmp_path, "SOLVER.AMP", "fp16", teacher=True)
    assert engine.amp.dtype == torch.float16 and set(engine.amp.scalers) == {"dis", "gen"}
    assert all(opt.defaults.get("fused") for opt in engine.optimizers.values())
    dtypes = real_pass_dtypes(engine)
    losses = [engine.run_step(it) for it in range(1, 5)]
    assert {"teacher_kl", "fine", "cycle", "dis_reg"} <= set(losses[-1])
    assert all(torch.isfinite(v).all() for step in losses for v in step.values())
    # D: fakes scored in fp16, the real pass feeding the regulariser in fp32
    assert dtypes[:2] == [torch.float16, torch.float32]
    assert losses[-1]["dis_reg"].dtype == torch.float32
    scales = engine.amp.scales()
    assert set(scales) == {"loss_scale_dis", "loss_scale_gen"}
    assert all(0 < s < float("inf") for s in scales.values())
    engine._accumulate(losses[-1])
    engine._log(None, None)  # the non-finite-loss guard passes
    path = engine.save_checkpoint("fp16")
    assert {"grad_scaler_dis", "grad_scaler_gen"} <= set(torch.load(path, weights_only=True))


def test_channels_last_networks_and_batches(tiny_market, tmp_path):
    engine = cuda_engine(tiny_market, tmp_path)
    assert engine.speed.channels_last and torch.backends.cudnn.benchmark
    conv = next(m for m in engine.model.dis.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = engine.to_device({"img": torch.randn(2, 3, 64, 32), "pid": torch.arange(2)})
    assert batch["img"].is_contiguous(memory_format=torch.channels_last)
    assert batch["pid"].device.type == "cuda"
    losses = [engine.run_step(it) for it in range(1, 3)]
    assert all(torch.isfinite(v).all() for step in losses for v in step.values())

    plain = cuda_engine(tiny_market, tmp_path / "plain", "MODEL.CHANNELS_LAST", "False")
    conv = next(m for m in plain.model.dis.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()


def test_compile_on_cuda_keeps_checkpoints(tiny_market, tmp_path):
    from dgnet_plugin.methods.dgnet import DGNetEngine

    engine = cuda_engine(tiny_market, tmp_path, "MODEL.COMPILE", "True")
    assert engine.speed.compile and engine.model.compiled
    losses = [engine.run_step(it) for it in range(1, 3)]
    assert all(torch.isfinite(v).all() for step in losses for v in step.values())
    path = engine.save_checkpoint("compiled")
    saved = torch.load(path, weights_only=True)["model"]
    assert not any("_orig_mod" in k for k in saved)
    plain = DGNetEngine(small_cfg(tiny_market, tmp_path / "plain", "MODEL.DEVICE", "cuda"))
    assert list(plain.model.state_dict()) == list(saved)
    plain.checkpointer.load(path, checkpointables=[])  # strict: every weight present


def test_run_step_does_not_synchronise(tiny_market, tmp_path):
    """Every scalar stays on the device during a step (fetched every LOG_PERIOD by _log):
    CUDA's sync debug mode turns any host synchronisation into an error."""
    from test_gradient_flow import batch

    for amp in ("bf16", "fp16"):
        engine = cuda_engine(
            tiny_market, tmp_path / amp, "SOLVER.AMP", amp, "CUDNN_BENCHMARK", "False", teacher=True
        )
        pinned = [{k: v.pin_memory() for k, v in batch(s).items()} for s in (0, 1)]
        engine.data = zip(*(itertools.repeat(b) for b in pinned))
        for it in range(1, 5):  # warm-up: lazy initialisation, both Es branches
            engine.run_step(it)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for it in range(5, 8):
                engine.run_step(it)
        finally:
            torch.cuda.set_sync_debug_mode("default")
