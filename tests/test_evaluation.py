"""Ranking metrics against hand-computed references and against torchreid."""

import numpy as np
import pytest
import torch

from dgnet_plugin.evaluation import evaluate_distmat
from dgnet_plugin.evaluation.evaluator import format_results_table
from dgnet_plugin.evaluation.features import extract_features
from dgnet_plugin.methods.dgnet.appearance import combine_query_features
from dgnet_plugin.utils import torchreid_compat as tr


def test_hand_computed_single_query():
    # one query (pid 1, cam 0); gallery ranked by distance:
    # g0 pid2 c1 | g1 pid1 c0 (same camera: discarded) | g2 pid1 c1 | g3 pid -1 (junk)
    # g4 pid0 c1 (distractor) | g5 pid1 c1
    d = np.array([[0.1, 0.2, 0.3, 0.35, 0.4, 0.5]], dtype=np.float32)
    gp, gc = np.array([2, 1, 1, -1, 0, 1]), np.array([1, 0, 1, 1, 1, 1])
    r = evaluate_distmat(d, np.array([1]), gp, np.array([0]), gc)
    # valid ranking: g0 (miss), g2 (hit @2), g4 distractor (miss), g5 (hit @4)
    assert r["Rank-1"] == 0.0 and r["Rank-5"] == 1.0
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r["mINP"] == pytest.approx(2 / 4)


def test_query_without_true_match_is_skipped_and_all_missing_is_an_error():
    d = np.array([[0.1, 0.2], [0.3, 0.1]], dtype=np.float32)
    q_p, g_p = np.array([1, 5]), np.array([1, 2])
    r = evaluate_distmat(d, q_p, g_p, np.array([0, 0]), np.array([1, 1]))
    assert r["mINP"] == 1.0 and r["num_valid_queries"] == 1
    with pytest.raises(ValueError, match="no query"):
        evaluate_distmat(d, np.array([7, 8]), g_p, np.array([0, 0]), np.array([1, 1]))


def test_equal_to_torchreid_on_random_problems():
    rng = np.random.default_rng(0)
    for _ in range(3):
        q, g = 40, 300
        qp, gp = rng.integers(1, 30, q), rng.integers(1, 30, g)
        qc, gc = rng.integers(0, 4, q), rng.integers(0, 4, g)
        d = rng.random((q, g)).astype(np.float32)
        ours = evaluate_distmat(d, qp, gp, qc, gc)
        cmc, mAP = tr.evaluate_rank(d, qp, gp, qc, gc, max_rank=50, use_cython=False)
        assert ours["Rank-1"] == pytest.approx(cmc[0]) and ours["mAP"] == pytest.approx(mAP)


def test_query_side_alpha_weights_only_the_fine_half():
    q = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert torch.equal(combine_query_features(q, (2, 2), 0.5), torch.tensor([[1.0, 2.0, 1.5, 2.0]]))
    assert torch.equal(combine_query_features(q, (2, 2), -1), torch.tensor([[0.0, 0.0, 3.0, 4.0]]))
    assert torch.equal(combine_query_features(q, (4,), 0.5), q)
    with pytest.raises(ValueError, match="TEST.ALPHA"):
        combine_query_features(q, (2, 2), -0.5)


def test_features_are_flip_averaged_and_part_normalised():
    class Two(torch.nn.Module):
        feature_parts = (2, 2)

        def forward(self, x):  # depends on the horizontal order of the pixels
            return torch.cat([x[:, 0, 0, :2] * 3, x[:, 0, 0, :2]], dim=1)

    x = torch.tensor([[[[1.0, 0.0]]]]).expand(1, 3, 1, 2)
    loader = [{"img": x, "pid": torch.tensor([1]), "camid": torch.tensor([0])}]
    f, pids, cams = extract_features(Two(), loader, torch.device("cpu"), flip=True)
    # original [1,0] and flipped [0,1] halves, each normalised, summed, normalised again
    s = 2**-0.5
    assert torch.allclose(f, torch.tensor([[s, s, s, s]])) and pids.tolist() == [1]


def test_results_table():
    t = format_results_table(
        {
            "DG-Net": {
                "market_layout": {
                    "Rank-1": 50.0,
                    "Rank-5": 60.0,
                    "Rank-10": 70.0,
                    "mAP": 40.0,
                    "mINP": 10.0,
                }
            }
        }
    )
    assert "| DG-Net" in t and "50.00" in t and "mINP" in t


def test_the_query_side_weighting_is_dg_nets_seam_not_the_cores():
    """``TEST.ALPHA`` is DG-Net's key; the evaluator applies whatever ``query_transform``
    the engine supplies (DG-Net: the fine half x alpha; the core engines: none)."""
    from dgnet_plugin.config import get_cfg
    from dgnet_plugin.engine import ENGINE_REGISTRY, IterationTrainer

    assert "ALPHA" not in get_cfg().TEST and get_cfg("dgnet").TEST.ALPHA == 0.5
    assert IterationTrainer.query_transform(get_cfg(), object()) is None

    class Ea(torch.nn.Module):
        feature_parts = (2, 2)

    cfg = get_cfg("dgnet")
    cfg.TEST.ALPHA = 0.25
    f = ENGINE_REGISTRY.get("DGNetEngine").query_transform(cfg, Ea())
    q = torch.tensor([[1.0, 2.0, 4.0, 8.0]])
    assert torch.equal(f(q), torch.tensor([[1.0, 2.0, 1.0, 2.0]]))
