"""Ranking metrics for the re-ID leaderboard protocols, chunked over queries.

Single query (Market-1501, DukeMTMC-reID, MSMT17, CUHK03-NP): for each query, gallery items
with the query's pid *and* camera are discarded, junk (pid -1) is discarded, distractors
(pid 0) are ordinary non-matches. Queries without a true match are skipped.

Metrics, as fractions in [0, 1]:

* ``Rank-k``: CMC, the fraction of queries whose first true match is in the top k;
* ``mAP``: torchreid's AP, the mean over true matches of the precision at each match;
* ``mAP_market``: the Market-1501 official (trapezoid) AP,
  ``sum_i 1/n * ((i-1)/(r_i-1) + i/r_i) / 2`` with ``r_i`` the rank of the i-th match;
* ``mINP`` (Ye et al., TPAMI 2021): ``n / r_n``, the matches over the rank of the hardest one.

How it scales: only the ranks of the true matches are needed. For a chunk of queries, the
distances of each query's matches are sorted (``topk`` over the few matches), every
non-match is placed among them with ``searchsorted``, and a ``scatter_add`` histogram gives
how many non-matches precede each match. Work and memory are O(chunk x gallery); the
query x gallery matrix and its argsort are never built. Ties between a match and a non-match
are counted in favour of the match. Runs on whatever device the features are on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..utils import torchreid_compat as tr

DEFAULT_RANKS = (1, 5, 10, 20)


def _as_tensor(x, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, device=device)


def distance(q: torch.Tensor, g: torch.Tensor, metric: str = "cosine") -> torch.Tensor:
    """``(B, D) x (G, D) -> (B, G)`` distances: ``cosine`` = 1 - cos(q, g) (features are
    L2-normalised here), ``euclidean`` = squared L2 distance (torchreid's convention)."""
    if metric == "cosine":
        return 1.0 - F.normalize(q, dim=1) @ F.normalize(g, dim=1).t()
    if metric == "euclidean":
        d = (q * q).sum(1, keepdim=True) + (g * g).sum(1)[None] - 2.0 * (q @ g.t())
        return d.clamp_min_(0)
    raise ValueError(f"unknown metric '{metric}' (TEST.METRIC: cosine | euclidean)")


def _ranking_distance(gf: torch.Tensor, metric: str):
    """``q -> (B, G)`` scores that order each row like :func:`distance` does, with the gallery
    terms computed once: ``-cos`` for cosine, ``|g|^2 - 2 q.g`` for euclidean (the per-row
    constant ``|q|^2`` does not change a row's order). One matrix product per chunk."""
    if metric == "cosine":
        gt = F.normalize(gf, dim=1).t()
        return lambda q: (-F.normalize(q, dim=1)) @ gt
    if metric == "euclidean":
        gt, g2 = gf.t(), (gf * gf).sum(1)[None, :]
        return lambda q: torch.addmm(g2, q, gt, alpha=-2.0)
    raise ValueError(f"unknown metric '{metric}' (TEST.METRIC: cosine | euclidean)")


def match_ranks(dist, q_pids, g_pids, q_camids, g_camids, inplace: bool = False):
    """1-based ranks of each query's true matches after the protocol's removals.

    Args:
        dist: ``(B, G)`` distances (smaller = closer); pids/camids: ``(B,)`` and ``(G,)``.
        inplace: overwrite ``dist`` (saves a copy when the caller no longer needs it).
    Returns:
        ``ranks (B, P)`` float64, ascending per row, ``+inf`` beyond a row's matches, and
        ``num_matches (B,)`` (P = the largest number of matches in the chunk).
    """
    b = dist.shape[0]
    same_pid = q_pids[:, None] == g_pids[None, :]
    pos = same_pid & (q_camids[:, None] != g_camids[None, :])  # same camera: removed
    junk = g_pids == -1
    if bool(junk.any()):
        pos &= ~junk[None, :]
        same_pid |= junk[None, :]
    n_pos = pos.sum(1)
    p = int(n_pos.max()) if n_pos.numel() else 0
    if p == 0:
        return dist.new_full((b, 0), float("inf"), dtype=torch.float64), n_pos
    # the matches' distances, sorted per row and padded with +inf: (B, P)
    rows, cols = pos.nonzero(as_tuple=True)
    slot = torch.arange(rows.numel(), device=dist.device) - (n_pos.cumsum(0) - n_pos)[rows]
    pos_d = dist.new_full((b, p), float("inf"))
    pos_d[rows, slot] = dist[rows, cols]
    pos_d = pos_d.sort(dim=1).values
    # r_k = #matches with distance <= d_k: non-match k precedes match i (1-based) iff r_k < i.
    # Matches and removed items get +inf, hence r = P, a bucket that is never read.
    neg_d = (dist.masked_fill_ if inplace else dist.masked_fill)(same_pid, float("inf"))
    r = torch.searchsorted(pos_d, neg_d, right=True, out_int32=True)
    r += (torch.arange(b, device=dist.device, dtype=torch.int32) * (p + 1))[:, None]
    hist = torch.bincount(r.view(-1), minlength=b * (p + 1)).view(b, p + 1)
    neg_before = hist.cumsum(1)[:, :p].to(torch.float64)
    i = torch.arange(1, p + 1, device=dist.device, dtype=torch.float64)
    ranks = i[None, :] + neg_before
    valid = i[None, :] <= n_pos[:, None]
    return torch.where(valid, ranks, torch.full_like(ranks, float("inf"))), n_pos


def _chunk_sums(ranks, n_pos, max_rank):
    """Per-chunk sums over valid queries: CMC counts, AP, trapezoid AP, INP."""
    ok = n_pos > 0
    ranks, n = ranks[ok], n_pos[ok].to(torch.float64)
    if ranks.numel() == 0:
        z = torch.zeros((), dtype=torch.float64, device=ranks.device)
        return torch.zeros(max_rank, dtype=torch.float64, device=ranks.device), z, z, z, 0
    i = torch.arange(1, ranks.shape[1] + 1, device=ranks.device, dtype=torch.float64)[None]
    finite = torch.isfinite(ranks)
    r = torch.where(finite, ranks, torch.ones_like(ranks))
    prec = torch.where(finite, i / r, torch.zeros_like(r))
    old = torch.where(r > 1, (i - 1) / (r - 1).clamp_min(1), torch.ones_like(r))
    old = torch.where(finite, old, torch.zeros_like(r))
    ap = prec.sum(1) / n
    ap_market = ((old + prec) / 2).sum(1) / n
    last = ranks.gather(1, (n.long() - 1)[:, None]).squeeze(1)
    inp = n / last
    first = ranks[:, 0]
    ks = torch.arange(1, max_rank + 1, device=ranks.device, dtype=torch.float64)
    cmc = (first[:, None] <= ks[None]).sum(0).to(torch.float64)
    return cmc, ap.sum(), ap_market.sum(), inp.sum(), int(ok.sum())


#: Working bytes per (query, gallery) pair of a chunk: two float32 score copies, the boolean
#: masks, the int32 buckets and the temporaries of the comparisons.
BYTES_PER_PAIR = 24


def _chunk_rows(num_gallery: int, memory_mb: float) -> int:
    return max(1, int(memory_mb * 2**20 // (BYTES_PER_PAIR * max(1, num_gallery))))


def evaluate_distance_chunks(
    chunks, g_pids, g_camids, max_rank=20, ranks=DEFAULT_RANKS, inplace=False
):
    """Metrics from an iterable of ``(dist (B, G), q_pids (B,), q_camids (B,))`` chunks
    (``inplace``: the chunks are scratch tensors that may be overwritten).

    Raises ``ValueError`` when no query has a true match in the gallery.
    """
    cmc = None
    ap = ap_m = inp = 0.0
    n_valid = 0
    for dist, qp, qc in chunks:
        r, n_pos = match_ranks(dist, qp, g_pids, qc, g_camids, inplace)
        c, a, am, ip, k = _chunk_sums(r, n_pos, max_rank)
        cmc = c if cmc is None else cmc + c
        ap, ap_m, inp, n_valid = ap + float(a), ap_m + float(am), inp + float(ip), n_valid + k
    if n_valid == 0:
        raise ValueError("no query has a true match in the gallery (check pids and cameras)")
    cmc = (cmc / n_valid).cpu().numpy()
    out = {f"Rank-{k}": float(cmc[min(k, max_rank) - 1]) for k in ranks}
    out.update(mAP=ap / n_valid, mAP_market=ap_m / n_valid, mINP=inp / n_valid)
    out["num_valid_queries"] = n_valid
    return out


def evaluate_features(
    qf,
    gf,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    metric="cosine",
    ranks=DEFAULT_RANKS,
    memory_mb=512,
    cuhk03_classic=False,
    seed=0,
):
    """Leaderboard metrics from ``(Q, D)`` query and ``(G, D)`` gallery features.

    Distances are computed chunk by chunk (about ``memory_mb`` of working memory per chunk)
    on the features' device. ``cuhk03_classic``: the CUHK03 single-gallery-shot CMC (one
    gallery image per identity drawn at random, 10 repeats, torchreid's ``eval_cuhk03``
    run per chunk; ``seed`` fixes the draws); mAP/mINP stay the single-query ones.
    """
    device = qf.device
    g_pids, g_camids = _as_tensor(g_pids, device), _as_tensor(g_camids, device)
    q_pids, q_camids = _as_tensor(q_pids, device), _as_tensor(q_camids, device)
    step = _chunk_rows(gf.shape[0], memory_mb)
    max_rank = max(ranks)
    score = _ranking_distance(gf, metric)

    def chunks():
        for s in range(0, qf.shape[0], step):
            yield (
                score(qf[s : s + step]),
                q_pids[s : s + step],
                q_camids[s : s + step],
            )

    out = evaluate_distance_chunks(chunks(), g_pids, g_camids, max_rank, ranks, inplace=True)
    if cuhk03_classic:
        out.update(_cuhk03_classic_cmc(chunks(), g_pids, g_camids, max_rank, ranks, seed))
    return out


def evaluate_distmat(
    distmat, q_pids, g_pids, q_camids, g_camids, ranks=DEFAULT_RANKS, rows_per_chunk=1024
):
    """The same metrics from a precomputed ``(Q, G)`` distance matrix (e.g. after
    re-ranking), processed ``rows_per_chunk`` queries at a time."""
    d = _as_tensor(distmat, "cpu").float()
    qp, qc = _as_tensor(q_pids, "cpu"), _as_tensor(q_camids, "cpu")
    gp, gc = _as_tensor(g_pids, "cpu"), _as_tensor(g_camids, "cpu")
    chunks = (
        (d[s : s + rows_per_chunk], qp[s : s + rows_per_chunk], qc[s : s + rows_per_chunk])
        for s in range(0, d.shape[0], rows_per_chunk)
    )
    return evaluate_distance_chunks(chunks, gp, gc, max(ranks), ranks)


def _cuhk03_classic_cmc(chunks, g_pids, g_camids, max_rank, ranks, seed):
    gp, gc = g_pids.cpu().numpy(), g_camids.cpu().numpy()
    total, n = np.zeros(max_rank), 0
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        for dist, qp, qc in chunks:
            qp_np, qc_np = qp.cpu().numpy(), qc.cpu().numpy()
            valid = [((gp == p) & (gc != c)).any() for p, c in zip(qp_np, qc_np)]
            k = int(np.sum(valid))
            if k == 0:
                continue
            cmc, _ = tr.evaluate_rank(
                dist.cpu().numpy(),
                qp_np,
                gp,
                qc_np,
                gc,
                max_rank=max_rank,
                use_metric_cuhk03=True,
                use_cython=False,
            )
            # one gallery image per identity: the list can be shorter than max_rank, and the
            # CMC has reached its final value there
            cmc = np.concatenate([cmc, np.full(max(0, max_rank - len(cmc)), cmc[-1])])
            total += cmc[:max_rank] * k
            n += k
    finally:
        np.random.set_state(state)
    return {f"Rank-{r}_cuhk03": float(total[r - 1] / n) for r in ranks}


def multi_query_features(qf, q_pids, q_camids, mq_feats, mq_pids, mq_camids):
    """Market-1501 multi-query: each query's feature becomes the L2-normalised mean of the
    multi-query images (``gt_bbox``) with its pid and camera; queries without any keep
    their own feature. Shapes ``(Q, D)``, ``(M, D)``; returns ``(Q, D)``."""
    q_pids, q_camids = _as_tensor(q_pids, qf.device), _as_tensor(q_camids, qf.device)
    mp, mc = _as_tensor(mq_pids, qf.device), _as_tensor(mq_camids, qf.device)
    same = (q_pids[:, None] == mp[None]) & (q_camids[:, None] == mc[None])  # (Q, M)
    counts = same.sum(1, keepdim=True)
    mean = (same.to(mq_feats.dtype) @ mq_feats) / counts.clamp_min(1)
    return F.normalize(torch.where(counts > 0, mean, qf), dim=1)
