"""The chunked ranking evaluator: hand-computed cases, torchreid equality, memory bound."""

import numpy as np
import pytest
import torch

from dgnet_plugin.evaluation import ranking
from dgnet_plugin.evaluation.ranking import (
    distance,
    evaluate_distmat,
    evaluate_features,
    multi_query_features,
)
from dgnet_plugin.utils import torchreid_compat as tr


def test_market_trapezoid_ap_and_torchreid_ap_by_hand():
    # one query, valid ranked list: miss, hit, miss, hit -> ranks of matches 2 and 4
    d = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    r = evaluate_distmat(d, [1], [2, 1, 3, 1], [0], [1, 1, 1, 1])
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    # Market official: sum_i 1/n * (old_precision + precision) / 2
    # i=1, rank 2: old = 0/1, prec = 1/2; i=2, rank 4: old = 1/3, prec = 2/4
    assert r["mAP_market"] == pytest.approx(0.5 * (0 + 0.5) / 2 + 0.5 * (1 / 3 + 0.5) / 2)
    assert r["mINP"] == pytest.approx(2 / 4) and r["Rank-1"] == 0 and r["Rank-5"] == 1
    assert r["num_valid_queries"] == 1


def test_first_position_match_has_old_precision_one():
    d = np.array([[0.1, 0.2]], dtype=np.float32)
    r = evaluate_distmat(d, [1], [1, 2], [0], [1, 1])
    assert r["mAP_market"] == pytest.approx(1.0) and r["Rank-1"] == 1.0


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_features_path_equals_torchreid(metric):
    g = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(70, 16, generator=g), torch.randn(400, 16, generator=g)
    qp, gp = torch.randint(0, 30, (70,), generator=g), torch.randint(0, 30, (400,), generator=g)
    qc, gc = torch.randint(0, 3, (70,), generator=g), torch.randint(0, 3, (400,), generator=g)
    ours = evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, memory_mb=0.1)
    d = tr.metrics.compute_distance_matrix(qf, gf, metric=metric).numpy()
    cmc, mAP = tr.evaluate_rank(
        d, qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(), 20, use_cython=False
    )
    for k in (1, 5, 10, 20):
        assert ours[f"Rank-{k}"] == pytest.approx(cmc[k - 1], abs=1e-6)
    assert ours["mAP"] == pytest.approx(mAP, abs=1e-6)
    assert torch.allclose(distance(qf, gf, metric), torch.from_numpy(d), atol=1e-4)


def test_chunks_stay_within_the_memory_budget(monkeypatch):
    g = torch.Generator().manual_seed(1)
    qf, gf = torch.randn(50, 8, generator=g), torch.randn(3000, 8, generator=g)
    qp, gp = torch.randint(0, 20, (50,), generator=g), torch.randint(0, 20, (3000,), generator=g)
    qc, gc = torch.zeros(50, dtype=torch.long), torch.ones(3000, dtype=torch.long)
    shapes = []
    real = ranking.match_ranks

    def spy(dist, *args, **kw):
        shapes.append(tuple(dist.shape))
        return real(dist, *args, **kw)

    monkeypatch.setattr(ranking, "match_ranks", spy)
    budget_mb = 1.0  # about 8 queries x 3000 gallery items per chunk
    small = evaluate_features(qf, gf, qp, gp, qc, gc, memory_mb=budget_mb)
    rows = max(s[0] for s in shapes)
    assert 1 <= rows < 50 and len(shapes) > 1  # the gallery is larger than one chunk
    assert all(s[1] == 3000 for s in shapes)
    assert rows * 3000 * ranking.BYTES_PER_PAIR <= budget_mb * 2**20
    shapes.clear()
    big = evaluate_features(qf, gf, qp, gp, qc, gc, memory_mb=1024)
    assert len(shapes) == 1 and small == pytest.approx(big, abs=1e-12)


def test_no_true_match_anywhere_is_an_error():
    with pytest.raises(ValueError, match="no query"):
        evaluate_distmat(np.zeros((2, 2), np.float32), [1, 2], [3, 4], [0, 0], [1, 1])


def test_cuhk03_classic_matches_torchreid_with_the_same_draws():
    rng = np.random.default_rng(3)
    qp, gp = rng.integers(0, 10, 20), rng.integers(0, 10, 120)
    qc, gc = np.zeros(20, int), np.ones(120, int)
    qf, gf = torch.randn(20, 8), torch.randn(120, 8)
    ours = evaluate_features(qf, gf, qp, gp, qc, gc, cuhk03_classic=True, seed=5)
    d = distance(qf, gf).numpy()
    np.random.seed(5)
    cmc, _ = tr.evaluate_rank(d, qp, gp, qc, gc, 20, use_metric_cuhk03=True, use_cython=False)
    assert ours["Rank-1_cuhk03"] == pytest.approx(cmc[0]) and ours[
        "Rank-5_cuhk03"
    ] == pytest.approx(cmc[4])


def test_rerank_uses_torchreids_k_reciprocal_reranking():
    from dgnet_plugin.evaluation.evaluator import rerank_distance

    qf, gf = torch.randn(10, 8), torch.randn(40, 8)
    ours = rerank_distance(qf, gf, "euclidean", 5, 3, 0.3)
    dm = lambda a, b: tr.metrics.compute_distance_matrix(a, b, "euclidean").numpy()  # noqa: E731
    ref = tr.utils.re_ranking(dm(qf, gf), dm(qf, qf), dm(gf, gf), k1=5, k2=3, lambda_value=0.3)
    assert np.allclose(ours, ref, atol=1e-4)


def test_multi_query_mean_of_same_pid_and_camera():
    qf = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mf = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    out = multi_query_features(qf, [1, 2], [0, 0], mf, [1, 1, 2], [0, 0, 1])
    s = 2**-0.5
    assert torch.allclose(out[0], torch.tensor([s, s]))  # mean of the two pid-1 cam-0 images
    assert torch.allclose(out[1], torch.tensor([0.0, 1.0]))  # no pid-2 cam-0 image: unchanged


def test_ties_between_a_match_and_a_non_match_count_for_the_match():
    # distances: non-match 0.1, then a match and a non-match tied at 0.2, then a match at 0.3
    d = np.array([[0.1, 0.2, 0.2, 0.3]], dtype=np.float32)
    r = evaluate_distmat(d, [1], [2, 1, 3, 1], [0], [1, 1, 1, 1])
    # the tied match is placed before the tied non-match: match ranks 2 and 4
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    r2 = evaluate_distmat(d, [1], [2, 3, 1, 1], [0], [1, 1, 1, 1])  # same tie, other order
    assert r2["mAP"] == pytest.approx(r["mAP"])


def test_distractors_are_non_matches_and_junk_is_removed():
    d = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    # junk (-1) at the top is removed; distractor (0) second counts as a miss
    r = evaluate_distmat(d, [1], [-1, 0, 1], [0], [1, 1, 1])
    assert r["Rank-1"] == 0.0 and r["mAP"] == pytest.approx(1 / 2)


def _histogram_by_binary_search(neg_d, pos_d):
    r = torch.searchsorted(pos_d, neg_d, right=True)
    ones = torch.ones_like(r)
    return torch.zeros(len(pos_d), pos_d.shape[1] + 1, dtype=torch.int64).scatter_add_(1, r, ones)


@pytest.mark.parametrize("case", ["continuous", "ties", "far_from_zero", "one_match"])
def test_binned_histogram_equals_a_binary_search(case):
    g = torch.Generator().manual_seed(3)
    b, n, p = 40, 3000, 12
    neg = torch.randn(b, n, generator=g)
    pos = torch.randn(b, p, generator=g) * 0.5
    if case == "ties":  # few distinct values: many non-matches tie with a match
        neg, pos = neg.mul(3).round() / 3, pos.mul(3).round() / 3
    if case == "far_from_zero":  # euclidean-like magnitudes with a narrow spread
        neg, pos = 3e4 + 40 * neg, 3e4 + 40 * pos
    n_pos = torch.randint(0, p + 1, (b,), generator=g)
    if case == "one_match":
        n_pos = torch.ones(b, dtype=torch.long)
    pos = torch.where(torch.arange(p)[None] < n_pos[:, None], pos, torch.inf)
    pos = pos.sort(1).values
    neg[:, :5] = torch.inf  # removed items
    ours = ranking.nonmatch_histogram(neg, pos, n_pos)
    ref = _histogram_by_binary_search(neg, pos)
    # only the buckets below each row's number of matches are ever read
    read = torch.arange(p + 1)[None] < n_pos[:, None]
    assert torch.equal(ours.cumsum(1)[read], ref.cumsum(1)[read])


def test_junk_is_dropped_like_torchreid_on_the_gallery_without_it():
    g = torch.Generator().manual_seed(4)
    qf, gf = torch.randn(60, 16, generator=g), torch.randn(500, 16, generator=g)
    qp = torch.randint(1, 25, (60,), generator=g)
    gp = torch.randint(-1, 25, (500,), generator=g)  # -1 junk, 0 distractors, 1.. ids
    qc, gc = torch.randint(0, 3, (60,), generator=g), torch.randint(0, 3, (500,), generator=g)
    ours = evaluate_features(qf, gf, qp, gp, qc, gc, metric="euclidean", memory_mb=0.05)
    keep = gp != -1
    d = tr.metrics.compute_distance_matrix(qf, gf[keep], metric="euclidean").numpy()
    cmc, mAP = tr.evaluate_rank(
        d, qp.numpy(), gp[keep].numpy(), qc.numpy(), gc[keep].numpy(), 20, use_cython=False
    )
    assert ours["Rank-1"] == pytest.approx(cmc[0], abs=1e-6)
    assert ours["Rank-10"] == pytest.approx(cmc[9], abs=1e-6)
    assert ours["mAP"] == pytest.approx(mAP, abs=1e-6)


def test_non_finite_features_are_an_error():
    qf, gf = torch.randn(3, 4), torch.randn(5, 4)
    gf[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        evaluate_features(qf, gf, [1, 2, 3], [1, 2, 3, 1, 2], [0, 0, 0], [1, 1, 1, 1, 1])
