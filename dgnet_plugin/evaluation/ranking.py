"""Single-query ranking metrics: CMC and mAP (torchreid) and mINP."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..utils import torchreid_compat as tr


def _valid_matches(distmat, q_pids, g_pids, q_camids, g_camids):
    """Per query: the boolean match row over the ranked gallery, with the gallery items of the
    same pid *and* camera removed (Market-1501 protocol, as torchreid's ``evaluate_rank``)."""
    order = np.argsort(distmat, axis=1, kind="stable")
    for i in range(distmat.shape[0]):
        o = order[i]
        keep = ~((g_pids[o] == q_pids[i]) & (g_camids[o] == q_camids[i]))
        yield (g_pids[o][keep] == q_pids[i])


def compute_minp(distmat, q_pids, g_pids, q_camids, g_camids) -> float:
    """mINP (Ye et al., TPAMI 2021): mean over queries of ``#true matches / rank of the
    hardest true match`` (1-based); queries without a true match are skipped.

    Raises ``ValueError`` when no query has a true match in the gallery.
    """
    inps = []
    for matches in _valid_matches(distmat, q_pids, g_pids, q_camids, g_camids):
        if not matches.any():
            continue
        hardest = np.flatnonzero(matches)[-1] + 1
        inps.append(matches.sum() / hardest)
    if not inps:
        raise ValueError("no query has a true match in the gallery")
    return float(np.mean(inps))


def evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> dict:
    """Rank-1/5/10, mAP and mINP (as fractions in [0, 1]) of a ``(Q, G)`` distance matrix
    (smaller = more similar), single-query Market-1501 protocol: gallery junk (pid -1) is
    discarded for every query, gallery items with the query's pid and camera are discarded
    per query, distractors (pid 0) count as non-matches. CMC and mAP come from torchreid's
    ``evaluate_rank`` (the Python path on PyPI 0.2.5); mINP from :func:`compute_minp`."""
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    keep = g_pids != -1
    distmat = np.asarray(distmat, dtype=np.float32)[:, keep]
    args = (distmat, np.asarray(q_pids), g_pids[keep], np.asarray(q_camids), g_camids[keep])
    # torchreid's Python path breaks when max_rank exceeds a query's gallery after the
    # same-pid-same-camera removal: cap it at the smallest valid gallery.
    same = Counter(zip(args[2].tolist(), args[4].tolist()))
    valid = [distmat.shape[1] - same[(p, c)] for p, c in zip(args[1].tolist(), args[3].tolist())]
    cmc, mAP = tr.evaluate_rank(*args, max_rank=max(1, min(max_rank, *valid)), use_cython=False)
    return {
        "Rank-1": float(cmc[0]),
        "Rank-5": float(cmc[min(4, len(cmc) - 1)]),
        "Rank-10": float(cmc[min(9, len(cmc) - 1)]),
        "mAP": float(mAP),
        "mINP": compute_minp(*args),
    }
