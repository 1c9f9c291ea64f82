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

How it scales: only the ranks of the true matches are needed. The gallery is sorted by pid
once (junk dropped), so a query's same-pid items are one column range found by binary search:
no (query x gallery) pid or camera masks are built. For a chunk of queries, the distances of
each query's matches are gathered and sorted (a few per row), and a histogram counts how many
non-matches precede each match (:func:`nonmatch_histogram`: equal-width bins and one
``bincount``; a binary search only for the ~1 % of non-matches that share a bin with a
match). Work and memory are O(chunk x gallery), in buffers reused from chunk to chunk; the
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
    """``(q, out) -> (B, G)`` scores that order each row like :func:`distance` does, with the
    gallery terms computed once: ``-cos`` for cosine, ``|g|^2 - 2 q.g`` for euclidean (the
    per-row constant ``|q|^2`` does not change a row's order). One matrix product per chunk,
    written into ``out``."""
    if metric == "cosine":
        gt = F.normalize(gf, dim=1).t()
        return lambda q, out: torch.mm(-F.normalize(q, dim=1), gt, out=out)
    if metric == "euclidean":
        gt, g2 = gf.t(), (gf * gf).sum(1)[None, :]
        return lambda q, out: torch.addmm(g2, q, gt, alpha=-2.0, out=out)
    raise ValueError(f"unknown metric '{metric}' (TEST.METRIC: cosine | euclidean)")


class SortedGallery:
    """The gallery as the ranking sees it: junk (pid -1) dropped, the rest stably sorted by
    pid, so that each query's same-pid items are one contiguous column range.

    Attributes: ``perm (G',)`` original gallery indices in this order, ``pids (G',)``,
    ``camids (G',)``. Distance matrices given to :func:`match_ranks` have their columns in
    this order (``dist[:, perm]``, or features ``gf[perm]``).
    """

    def __init__(self, g_pids: torch.Tensor, g_camids: torch.Tensor):
        kept = (g_pids != -1).nonzero().squeeze(1)
        order = torch.sort(g_pids[kept], stable=True).indices
        self.perm = kept[order]
        self.pids, self.camids = g_pids[self.perm], g_camids[self.perm]

    def __len__(self) -> int:
        return self.perm.numel()


class Workspace:
    """Scratch buffers of :func:`nonmatch_histogram` for chunks of up to ``rows x cols``
    pairs, reused from chunk to chunk (allocating ~100 MB per chunk costs more in page faults
    than the arithmetic on it): ``u`` float32, ``bins`` int32, ``flag`` bool (9 bytes/pair)."""

    def __init__(self, rows: int, cols: int, device):
        n = rows * cols
        self.u = torch.empty(n, device=device)
        self.bins = torch.empty(n, dtype=torch.int32, device=device)
        self.flag = torch.empty(n, dtype=torch.bool, device=device)

    def fits(self, b: int, g: int) -> bool:
        return b * g <= self.u.numel()


#: Bins per query of the non-match histogram (:func:`nonmatch_histogram`).
HIST_BINS = 1024


def nonmatch_histogram(neg_d, pos_d, n_pos, workspace: Workspace | None = None):
    """``hist (B, P+1)`` int64: ``hist[b, j]`` = the non-matches of query ``b`` preceded by
    exactly ``j`` of its matches (``j`` = #matches with distance <= the non-match's, so ties go
    to the match; removed items, at ``+inf``, land in ``j >= num_matches``).

    Args:
        neg_d: ``(B, G)`` distances, removed items set to ``+inf``; must be finite otherwise.
        pos_d: ``(B, P)`` each query's match distances, ascending, ``+inf``-padded.
        n_pos: ``(B,)`` number of matches per query.

    Exact, without a per-element binary search: each row's span [easiest, hardest match] is
    cut into ``HIST_BINS`` equal bins by one monotone float map ``u = c + s d`` applied alike
    to matches and non-matches, so a non-match in a bin below (above) a match's bin is closer
    (farther) than it. One ``bincount`` over (query, bin) gives the counts; only the few
    non-matches that share a bin with a match (~1 %) are placed with ``searchsorted``.
    """
    b, g = neg_d.shape
    p, k, dev = pos_d.shape[1], HIST_BINS, neg_d.device
    ws = workspace if workspace is not None and workspace.fits(b, g) else Workspace(b, g, dev)
    has = n_pos > 0
    lo = torch.where(has, pos_d[:, 0], torch.zeros_like(pos_d[:, 0]))
    hi = torch.where(has, pos_d.gather(1, (n_pos - 1).clamp_min(0)[:, None])[:, 0], lo)
    span = hi - lo
    span = torch.where(span > 0, span, lo.abs().clamp_min(1.0) * 1e-3)
    # the easiest match lands in bin 1 and the hardest in bin k - 3: bins 0 (closer than
    # every match) and k - 1 (farther, and +inf) never hold a match
    scale = ((k - 4.0) / span)[:, None]
    shift = 1.5 - lo[:, None] * scale

    def to_bin(x, out=None):
        return torch.addcmul(shift, x, scale, out=out).clamp_(0, k - 1)

    u = to_bin(neg_d, out=ws.u[: b * g].view(b, g))
    bins = ws.bins[: b * g].view(b, g)
    bins.copy_(u)  # float -> int32 truncates: floor on [0, k - 1]
    bins += (torch.arange(b, device=dev, dtype=torch.int32) * k)[:, None]
    bins = bins.view(-1)
    valid = torch.arange(p, device=dev)[None] < n_pos[:, None]
    pos_bin = torch.where(valid, to_bin(pos_d).to(torch.int64), k)  # (B, P), ascending
    shared = torch.zeros(b, k + 1, dtype=torch.bool, device=dev).scatter_(1, pos_bin, True)
    shared = shared[:, :k].contiguous()  # (B, K): bins holding a match
    # a non-match alone in bin q follows exactly the matches of the bins below q
    bucket = torch.searchsorted(pos_bin, torch.arange(k, device=dev).expand(b, k).contiguous())
    per_bin = torch.bincount(bins, minlength=b * k).view(b, k).masked_fill_(shared, 0)
    hist = torch.zeros(b, p + 1, dtype=torch.int64, device=dev).scatter_add_(1, bucket, per_bin)
    # the non-matches sharing a bin with a match: exact placement
    flag = torch.index_select(shared.view(-1), 0, bins, out=ws.flag[: b * g])
    at = flag.nonzero().squeeze(1)
    rows = torch.div(at, g, rounding_mode="floor")
    r = torch.searchsorted(pos_d[rows], neg_d.view(-1)[at, None], right=True).squeeze(1)
    return hist.view(-1).index_add_(0, rows * (p + 1) + r, torch.ones_like(r)).view(b, p + 1)


def match_ranks(
    dist,
    q_pids,
    q_camids,
    gallery: SortedGallery,
    inplace: bool = False,
    workspace: Workspace | None = None,
):
    """1-based ranks of each query's true matches after the protocol's removals.

    Args:
        dist: ``(B, G')`` finite distances (smaller = closer), columns in ``gallery`` order.
        q_pids, q_camids: ``(B,)``.
        inplace: overwrite ``dist`` (saves a copy when the caller no longer needs it).
        workspace: reusable scratch buffers (allocated when missing).
    Returns:
        ``ranks (B, P)`` float64, ascending per row, ``+inf`` beyond a row's matches, and
        ``num_matches (B,)`` (P = the largest number of matches in the chunk).
    """
    b, inf = dist.shape[0], float("inf")
    # each query's same-pid items: columns [start, start + count) of the sorted gallery
    start = torch.searchsorted(gallery.pids, q_pids)
    count = torch.searchsorted(gallery.pids, q_pids, right=True) - start
    k = int(count.max()) if b else 0
    if k == 0:
        return dist.new_full((b, 0), inf, dtype=torch.float64), count
    slot = torch.arange(k, device=dist.device)
    idx = (start[:, None] + torch.minimum(slot[None], (count - 1).clamp_min(0)[:, None])).clamp_(
        max=max(0, len(gallery) - 1)
    )  # (B, K); past a row's range it repeats the row's last same-pid column
    pos = (slot[None] < count[:, None]) & (gallery.camids[idx] != q_camids[:, None])
    n_pos = pos.sum(1)
    p = int(n_pos.max())
    if p == 0:
        return dist.new_full((b, 0), inf, dtype=torch.float64), n_pos
    # the matches' distances, sorted per row and padded with +inf: (B, P)
    pos_d = dist.gather(1, idx).masked_fill_(~pos, inf).sort(dim=1).values[:, :p]
    # every same-pid item (matches and same-camera ones) leaves the non-matches
    neg_d = (dist if inplace else dist.clone()).scatter_(1, idx, inf)
    hist = nonmatch_histogram(neg_d, pos_d.contiguous(), n_pos, workspace)
    neg_before = hist.cumsum(1)[:, :p].to(torch.float64)
    i = torch.arange(1, p + 1, device=dist.device, dtype=torch.float64)
    ranks = i[None, :] + neg_before
    valid = i[None, :] <= n_pos[:, None]
    return torch.where(valid, ranks, torch.full_like(ranks, inf)), n_pos


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


#: Working bytes per (query, gallery) pair of a chunk: the float32 scores and the buffers of
#: :class:`Workspace`.
BYTES_PER_PAIR = 13


def _chunk_rows(num_gallery: int, memory_mb: float) -> int:
    return max(1, int(memory_mb * 2**20 // (BYTES_PER_PAIR * max(1, num_gallery))))


def evaluate_distance_chunks(
    chunks, gallery: SortedGallery, max_rank=20, ranks=DEFAULT_RANKS, inplace=False
):
    """Metrics from an iterable of ``(dist (B, G'), q_pids (B,), q_camids (B,))`` chunks,
    columns in ``gallery`` order (``inplace``: the chunks are scratch tensors that may be
    overwritten).

    Raises ``ValueError`` when no query has a true match in the gallery.
    """
    cmc, ws = None, None
    ap = ap_m = inp = 0.0
    n_valid = 0
    for dist, qp, qc in chunks:
        if ws is None:
            ws = Workspace(dist.shape[0], dist.shape[1], dist.device)
        r, n_pos = match_ranks(dist, qp, qc, gallery, inplace, ws)
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
    gallery = SortedGallery(_as_tensor(g_pids, device), _as_tensor(g_camids, device))
    gf = gf[gallery.perm]
    q_pids, q_camids = _as_tensor(q_pids, device), _as_tensor(q_camids, device)
    if not bool(torch.isfinite(qf.sum()) & torch.isfinite(gf.sum())):  # one pass each
        raise ValueError("query or gallery features contain NaN/Inf (check the model)")
    step = max(1, min(_chunk_rows(len(gallery), memory_mb), qf.shape[0]))
    max_rank = max(ranks)
    score = _ranking_distance(gf, metric)
    out_buf = torch.empty(step, len(gallery), device=device)

    def chunks():
        for s in range(0, qf.shape[0], step):
            q = qf[s : s + step]
            yield (
                score(q, out_buf[: q.shape[0]]),
                q_pids[s : s + step],
                q_camids[s : s + step],
            )

    out = evaluate_distance_chunks(chunks(), gallery, max_rank, ranks, inplace=True)
    if cuhk03_classic:
        out.update(_cuhk03_classic_cmc(chunks(), gallery, max_rank, ranks, seed))
    return out


def evaluate_distmat(
    distmat, q_pids, g_pids, q_camids, g_camids, ranks=DEFAULT_RANKS, rows_per_chunk=1024
):
    """The same metrics from a precomputed ``(Q, G)`` distance matrix (e.g. after
    re-ranking), processed ``rows_per_chunk`` queries at a time."""
    d = _as_tensor(distmat, "cpu").float()
    if not bool(torch.isfinite(d).all()):
        raise ValueError("the distance matrix contains NaN/Inf")
    qp, qc = _as_tensor(q_pids, "cpu"), _as_tensor(q_camids, "cpu")
    gallery = SortedGallery(_as_tensor(g_pids, "cpu"), _as_tensor(g_camids, "cpu"))
    chunks = (
        (
            d[s : s + rows_per_chunk][:, gallery.perm],
            qp[s : s + rows_per_chunk],
            qc[s : s + rows_per_chunk],
        )
        for s in range(0, d.shape[0], rows_per_chunk)
    )
    return evaluate_distance_chunks(chunks, gallery, max(ranks), ranks, inplace=True)


def _cuhk03_classic_cmc(chunks, gallery: SortedGallery, max_rank, ranks, seed):
    gp, gc = gallery.pids.cpu().numpy(), gallery.camids.cpu().numpy()
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
