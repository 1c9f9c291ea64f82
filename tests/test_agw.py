"""The AGW cross-modality baseline and its shared parts: the weighted-regularisation triplet
and GeM against hand computations, the non-local block's identity start, the two-stream
network, and a few iterations plus evaluation through tools/train_net.py."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import MOBILENET_WEIGHTS, REPO, vi_proxy_opts

import dgnet_plugin  # noqa: F401 (registers the methods)
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.engine.optim import warmup_multistep_factor
from dgnet_plugin.losses import weighted_regularized_triplet_loss
from dgnet_plugin.modeling import build_model
from dgnet_plugin.modeling.blocks import NonLocalBlock
from dgnet_plugin.modeling.heads import gem_pool
from dgnet_plugin.utils.events import read_json_lines


def test_wrt_loss_by_hand():
    # 1-D features: a0 = 0, a1 = 1 (identity A), b0 = 3 (identity B)
    f = torch.tensor([[0.0], [1.0], [3.0]])
    pids = torch.tensor([0, 0, 1])
    # the anchor itself counts among its positives (distance 0), as in AGW's loss.
    # anchor a0: positives d = 0 (itself), 1 (a1) weighted by softmax(d): 1 / (1 + e^-1) on
    # d = 1; one negative, d = 3 -> softplus(p - 3); anchor a1: the same p, negative d = 2
    p = 1 / (1 + math.exp(-1))
    # anchor b0: its only positive is itself (0); negatives d = 3 (a0), 2 (a1) weighted by
    # softmax(-d)
    w3, w2 = math.exp(-3), math.exp(-2)
    neg_b = (3 * w3 + 2 * w2) / (w3 + w2)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected = (sp(p - 3) + sp(p - 2) + sp(0 - neg_b)) / 3
    assert weighted_regularized_triplet_loss(f, pids).item() == pytest.approx(expected, rel=1e-4)


def test_gem_pool_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    assert gem_pool(x).item() == pytest.approx(((1 + 8 + 27 + 64) / 4) ** (1 / 3))


@pytest.mark.parametrize("inter, affinity", [(1, "dot_over_n"), (0, "softmax")])
def test_non_local_block_starts_as_identity_and_learns(inter, affinity):
    blk = NonLocalBlock(8, inter, affinity)
    x = torch.randn(2, 8, 4, 3)
    assert torch.equal(blk(x), x)
    blk(x).pow(2).sum().backward()
    assert blk.out[1].weight.grad.abs().sum() > 0


def test_warmup_multistep_factor():
    f = [warmup_multistep_factor(i, 4, (6, 8), 0.1) for i in range(10)]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f[5] == 1.0 and f[6] == pytest.approx(0.1) and f[9] == pytest.approx(0.01)
    # in 2 constant stages (AGW's per-epoch steps): 0.5 for 2 iterations, then 1
    f = [warmup_multistep_factor(i, 4, (6, 8), 0.1, stages=2) for i in range(6)]
    assert f == pytest.approx([0.5, 0.5, 1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("ir_input", ["rgb3", "gray1"])
def test_two_streams_share_the_body_and_pick_the_stem_by_channels(ir_input):
    cfg = load_cfg_file(
        str(REPO / "configs" / "agw_cpu_demo.yml"),
        ["MODEL.BACKBONE.PRETRAIN_PATH", str(MOBILENET_WEIGHTS), "MODEL.AGW.IR_INPUT", ir_input],
    )
    m = build_model(cfg, 7)
    w = m.stem_v[0][0].weight
    if ir_input == "gray1":  # one channel, the mean of the RGB filters
        assert m.stem_i[0][0].in_channels == 1 and m.stem_v[0][0].in_channels == 3
        assert torch.allclose(m.stem_i[0][0].weight[:, 0], w.mean(1))
    else:  # AGW: an unchanged copy of the RGB stem reads the grey image as 3 channels
        assert m.stem_i[0][0].in_channels == 3 and torch.equal(m.stem_i[0][0].weight, w)
        assert m.stem_i[0][0].weight is not w
        grey = torch.rand(2, 1, 8, 4)  # in [0, 1]: normalise both ways
        x1 = (grey - 0.449) / 0.226
        x3 = (grey.expand(-1, 3, -1, -1) - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / (
            torch.tensor([0.229, 0.224, 0.225])[:, None, None]
        )
        assert torch.allclose(m._infrared(x1), x3, atol=1e-5)
    m.train()
    out = m.forward_pair(torch.randn(2, 3, 64, 32), torch.randn(2, 1, 64, 32))
    assert out["logits"].shape == (4, 7) and out["pool"].shape == (4, 1280)
    m.zero_grad()
    m(torch.randn(2, 1, 64, 32))["logits"].sum().backward()  # an infrared batch alone
    assert m.stem_i[0][0].weight.grad is not None and m.stem_v[0][0].weight.grad is None
    m.eval()
    with torch.no_grad():
        assert m(torch.randn(2, 1, 64, 32)).shape == (2, 1280)
        assert m(torch.randn(2, 3, 64, 32)).shape == (2, 1280)


@pytest.mark.e2e
def test_agw_trains_and_evaluates_through_train_net(tmp_path):
    import train_net

    vi, out = tmp_path / "vi", tmp_path / "run"
    opts = [
        "MODEL.BACKBONE.PRETRAIN_PATH",
        str(MOBILENET_WEIGHTS),
        "INPUT.SIZE_TRAIN",
        "(32, 16)",
        "INPUT.SIZE_TEST",
        "(32, 16)",
        "OUTPUT_DIR",
        str(out),
        "SOLVER.MAX_ITER",
        "2",
        "SOLVER.WARMUP_ITERS",
        "1",
        "SOLVER.STEPS",
        "(1,)",
        "LOG_PERIOD",
        "1",
        *vi_proxy_opts(vi),
        "TEST.CROSS_MODALITY.SHOTS",
        "('single',)",
    ]
    assert train_net.cli(["--config-file", str(REPO / "configs" / "agw_cpu_demo.yml"), *opts]) == 0
    recs = read_json_lines(str(out / "metrics.json"))
    losses = [r for r in recs if "time" in r]
    assert {"id", "wrt"} <= set(losses[0])
    final = [r for r in recs if any("Rank-1" in k for k in r)][-1]
    key = "sysu_mm01@SYSU-MM01-proxy all-search single-shot/Rank-1"
    assert (
        0 <= final[key] <= 100
        and "sysu_mm01@SYSU-MM01-proxy indoor-search single-shot/mAP" in final
    )
