"""CUDA paths: bf16 autocast through the DG-Net step. Skipped on machines without a GPU."""

import pytest
import torch
from conftest import small_cfg

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (bf16 autocast path)"
)


def test_bf16_dgnet_step_on_cuda(tiny_market, tmp_path):
    from dgnet_plugin.engine import DGNetEngine

    cfg = small_cfg(tiny_market, tmp_path, "MODEL.DEVICE", "cuda", "LOSS.TEACHER_MAX", "0")
    cfg.LOSS.WARM_ITER = 0
    cfg.LOSS.WARM_SCALE = 1.0
    cfg.freeze()
    engine = DGNetEngine(cfg)
    engine.set_model_mode("train")
    losses = [engine.run_step(it) for it in range(3)]
    assert {"recon_f", "recon_s", "cycle", "dis_reg"} <= set(losses[-1])
    assert all(torch.isfinite(v).all() for step in losses for v in step.values())
    assert losses[-1]["dis_reg"].dtype == torch.float32  # the regulariser stays in fp32
