"""Visible-infrared re-ID evaluation protocols: SYSU-MM01 and RegDB, one named function each.

Sources (facts in ``../shared/reference/d2rl_and_gan_reid.md`` sections 1.4 and 1.5):

* SYSU-MM01 (Wu et al., ICCV 2017): the official MATLAB evaluation of ``wuancong/SYSU-MM01``
  (``evaluation/*.m``) and AGW's ``eval_sysu`` (mangye16/Cross-Modal-Re-ID-baseline).
  Queries: every infrared image (cam3, cam6) of the test identities, fixed. Gallery, drawn
  anew in each of 10 trials: for each (identity, visible camera) one image (single-shot) or
  10 (multi-shot), from cams 1, 2, 4, 5 (all-search) or 1, 2 (indoor-search). cam2 and cam3
  share a room, so a cam3 query ignores every cam2 gallery image
  (:func:`sysu_same_location_exclusion`). CMC is computed on the identity-deduplicated
  ranked list (MATLAB ``unique(..., 'stable')``); mAP and mINP on the full list.
* RegDB (Nguyen et al., Sensors 2017; protocol of Ye et al.): 10 random half splits, one
  model per trial; visible -> thermal (query = test visible, gallery = test thermal) and
  thermal -> visible (swapped). Plain CMC (no deduplication, nothing excluded), AP, mINP.

Metrics are fractions in [0, 1] here; the evaluator reports percentages, with the standard
deviation over trials as ``<metric>_std``.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from tabulate import tabulate

from .ranking import distance

SYSU_GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}  # 1-based SYSU camera numbers
SYSU_SHOTS = {"single": 1, "multi": 10}
CMC_RANKS = (1, 5, 10, 20)

#: Published numbers, reported by their papers (not measured here): {protocol setting:
#: {method: {metric: value}}}. Sources: D2RL (CVPR 2019) as tabulated in DEEN (CVPR 2023)
#: Table 2; AGW from mangye16/Cross-Modal-Re-ID-baseline's README (indoor: unverified).
REPORTED = {
    "all-search single-shot": {
        "D2RL": {"Rank-1": 28.9, "Rank-10": 70.6, "Rank-20": 82.4, "mAP": 29.2},
        "AGW": {"Rank-1": 47.50, "mAP": 47.65, "mINP": 35.30},
    },
    "indoor-search single-shot": {"AGW": {"Rank-1": 54.17, "mAP": 62.97}},
    "visible->thermal": {
        "D2RL": {"Rank-1": 43.4, "Rank-10": 66.1, "Rank-20": 76.3, "mAP": 44.1},
        "AGW": {"Rank-1": 70.05, "mAP": 66.37, "mINP": 50.19},
    },
}


def sysu_same_location_exclusion(q_camids, g_camids) -> np.ndarray:
    """``(Q, G)`` bool, True where the gallery item is removed for the query: a cam3 query
    never sees cam2 gallery images (same room), whatever their identity.

    Source: SYSU-MM01's official evaluation maps cameras with ``cam_id = [1 2 2 4 5 6]`` and
    removes gallery entries with the query's mapped camera; AGW: ``remove = (q_camid == 3) &
    (g_camids == 2)``. ``q_camids`` / ``g_camids`` are 0-based (camera number - 1), as the
    ``camid`` of :class:`~dgnet_plugin.data.cross_modality.SYSUMM01` items.
    """
    q = np.asarray(q_camids)[:, None] + 1
    g = np.asarray(g_camids)[None, :] + 1
    return (q == 3) & (g == 2)


def cross_modality_metrics(
    distmat, q_pids, g_pids, remove=None, deduplicate: bool = False, max_rank: int = 20
) -> dict:
    """CMC, mAP and mINP from a ``(Q, G)`` distance matrix (smaller = closer).

    Args:
        remove: ``(Q, G)`` bool, gallery items ignored for each query (SYSU-MM01's
            same-location rule), or ``None``.
        deduplicate: CMC over the ranked list with each identity kept at its first position
            only (the SYSU-MM01 rule, MATLAB ``unique(..., 'stable')``); AP and INP always use
            the full list.
    Returns:
        ``{Rank-1, Rank-5, Rank-10, Rank-20, mAP, mINP}`` as fractions, and
        ``num_valid_queries``; queries without a true match are skipped. Ties keep the
        gallery order (stable sort).

    Raises:
        ValueError: no query has a true match.
    """
    d = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    cmc = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(d.shape[0]):
        order = np.argsort(d[i], kind="stable")
        if remove is not None:
            order = order[~np.asarray(remove[i])[order]]
        ranked = g_pids[order]
        match = ranked == q_pids[i]
        if not match.any():
            continue
        hits = np.flatnonzero(match) + 1  # 1-based ranks of the matches
        aps.append(float(np.mean(np.arange(1, len(hits) + 1) / hits)))
        inps.append(len(hits) / hits[-1])
        if deduplicate:
            _, first = np.unique(ranked, return_index=True)
            ranked = ranked[np.sort(first)]
        first_hit = int(np.flatnonzero(ranked == q_pids[i])[0])
        if first_hit < max_rank:
            cmc[first_hit:] += 1
    n = len(aps)
    if n == 0:
        raise ValueError("no query has a true match in the gallery (check pids and cameras)")
    out = {f"Rank-{k}": cmc[k - 1] / n for k in CMC_RANKS if k <= max_rank}
    out.update(mAP=float(np.mean(aps)), mINP=float(np.mean(inps)), num_valid_queries=n)
    return out


def load_rand_perm_cam(path: str):
    """The official SYSU-MM01 gallery permutations, ``evaluation/data_split/rand_perm_cam.mat``.

    Read as ``perm[cam - 1][pid - 1]``: a ``(trials, n)`` array of 1-based image numbers in
    the identity's camera folder (sorted file order). This reading of the file's structure
    is ours (the file is not available here); a file that does not fit it raises.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file has no ``rand_perm_cam`` variable.
    """
    from scipy.io import loadmat

    mat = loadmat(path)
    if "rand_perm_cam" not in mat:
        raise ValueError(f"'{path}' has no 'rand_perm_cam' variable (SYSU-MM01 evaluation file)")
    cells = np.asarray(mat["rand_perm_cam"], dtype=object).reshape(-1)
    return [np.asarray(c, dtype=object).reshape(-1) for c in cells]


def sysu_gallery_trial(
    g_pids, g_camids, mode: str = "all", shot: str = "single", trial: int = 0, rand_perm=None
) -> np.ndarray:
    """Indices of one trial's gallery, drawn from every visible test image.

    For each identity and each camera of ``mode`` (all: 1, 2, 4, 5; indoor: 1, 2), 1
    (single-shot) or 10 (multi-shot; all of them when fewer) of its images, drawn with
    ``np.random.RandomState(trial)`` in identity, then camera order (AGW draws with
    Python's ``random.seed(trial)``: other galleries, the same protocol), or taken from the
    official permutations (``rand_perm``, :func:`load_rand_perm_cam`): row ``trial``'s first
    1 or 10 image numbers.

    Raises:
        ValueError: an unknown ``mode`` / ``shot``, or a permutation naming a missing image.
    """
    if mode not in SYSU_GALLERY_CAMS or shot not in SYSU_SHOTS:
        raise ValueError(f"SYSU-MM01 mode {mode!r} / shot {shot!r}: all|indoor, single|multi")
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    n_shot = SYSU_SHOTS[shot]
    rng = np.random.RandomState(trial)
    picked = []
    for pid in np.unique(g_pids):
        for cam in SYSU_GALLERY_CAMS[mode]:
            idx = np.flatnonzero((g_pids == pid) & (g_camids == cam - 1))
            if len(idx) == 0:
                continue
            if rand_perm is not None:
                row = np.atleast_2d(np.asarray(rand_perm[cam - 1][pid - 1]))[trial]
                nums = [int(v) - 1 for v in row[:n_shot]]
                if max(nums) >= len(idx):
                    raise ValueError(
                        f"rand_perm_cam: image {max(nums) + 1} of identity {pid} camera {cam}, "
                        f"which has {len(idx)} images"
                    )
                picked.extend(idx[nums])
            else:
                k = min(n_shot, len(idx))
                picked.extend(rng.choice(idx, size=k, replace=False))
    return np.sort(np.asarray(picked, dtype=np.int64))


def _mean_std(per_trial: list[dict]) -> dict:
    out = {}
    for k in per_trial[0]:
        if k == "num_valid_queries":
            continue
        v = np.array([t[k] for t in per_trial], dtype=np.float64)
        out[k], out[f"{k}_std"] = float(v.mean()), float(v.std())
    out["trials"] = len(per_trial)
    return out


def evaluate_sysu_mm01(
    qf,
    gf,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    modes=("all", "indoor"),
    shots=("single", "multi"),
    trials: int = 10,
    rand_perm=None,
    metric: str = "cosine",
) -> dict:
    """The SYSU-MM01 protocol (module docstring) on query (infrared) and full-gallery
    (visible) features: ``{"<mode>-search <shot>-shot": {metric: mean, metric_std: std,
    trials}}`` over ``trials`` galleries (:func:`sysu_gallery_trial`), each with the
    same-location exclusion and identity-deduplicated CMC (:func:`cross_modality_metrics`).
    Fractions in [0, 1]."""
    dist = distance(torch.as_tensor(qf), torch.as_tensor(gf), metric).cpu().numpy()
    remove_all = sysu_same_location_exclusion(q_camids, g_camids)
    out = {}
    for mode in modes:
        for shot in shots:
            per = []
            for t in range(trials):
                g = sysu_gallery_trial(g_pids, g_camids, mode, shot, t, rand_perm)
                per.append(
                    cross_modality_metrics(
                        dist[:, g], q_pids, np.asarray(g_pids)[g], remove_all[:, g], True
                    )
                )
            out[f"{mode}-search {shot}-shot"] = _mean_std(per)
    return out


def evaluate_regdb(vis_f, ir_f, vis_pids, ir_pids, metric: str = "cosine") -> dict:
    """The RegDB protocol on one split trial's test features: ``{"visible->thermal": m,
    "thermal->visible": m}`` (plain CMC, AP, INP; nothing excluded, as AGW's ``eval_regdb``
    with query camera 1 and gallery camera 2). Fractions in [0, 1]. Average the trials with
    :func:`mean_over_trials`."""
    d = distance(torch.as_tensor(vis_f), torch.as_tensor(ir_f), metric).cpu().numpy()
    return {
        "visible->thermal": cross_modality_metrics(d, vis_pids, ir_pids),
        "thermal->visible": cross_modality_metrics(d.T, ir_pids, vis_pids),
    }


def mean_over_trials(per_trial: list[dict]) -> dict:
    """``[{setting: metrics}]`` of several trials (e.g. RegDB's 10 split trials, one model
    each) -> ``{setting: {metric: mean, metric_std: std, trials}}``."""
    return {s: _mean_std([t[s] for t in per_trial]) for s in per_trial[0]}


_TRIAL_NAME = re.compile(r"^(regdb)_trial_\d+")


def trial_setting(name: str) -> str:
    """The setting a result belongs to once its split trial is dropped: ``"regdb_trial_3@
    RegDB visible->thermal"`` and ``"regdb@RegDB visible->thermal"`` (trial 1) ->
    ``"regdb@RegDB visible->thermal"``; other names unchanged."""
    return _TRIAL_NAME.sub(r"\1", name)


def aggregate_trials(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """Mean and standard deviation over runs, one model per split trial (RegDB's protocol:
    10 trials, each trained and tested on its own split): ``runs`` = one ``{setting: {metric:
    value}}`` per run (the last evaluation of its ``metrics.json``; settings named with
    their trial, :func:`trial_setting`) -> ``{setting: {metric: mean, metric_std: std,
    trials}}`` (:func:`mean_over_trials`) over the settings every run has. A run's own
    ``*_std`` / ``trials`` entries (its gallery trials) are dropped: the std is over runs.

    Raises:
        ValueError: no runs, or no setting common to all of them.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    per = [
        {
            trial_setting(s): {
                k: v for k, v in m.items() if k != "trials" and not k.endswith("_std")
            }
            for s, m in run.items()
        }
        for run in runs
    ]
    common = [s for s in per[0] if all(s in p for p in per[1:])]
    if not common:
        raise ValueError(
            f"the {len(runs)} runs share no evaluated setting (first run: {sorted(per[0])})"
        )
    return mean_over_trials([{s: p[s] for s in common} for p in per])


TABLE_METRICS = ("Rank-1", "Rank-10", "Rank-20", "mAP", "mINP")


def format_cross_modality_table(rows: dict[str, dict[str, dict]], reported=REPORTED) -> str:
    """``{model: {setting: {metric: %, metric_std: %, trials}}}`` -> one pipe table (tabulate):
    ``mean ± std`` over the trials for our rows, and, after each setting, the published
    numbers of :data:`REPORTED` labelled "(reported)". Settings are matched on their end
    (``"sysu_mm01 all-search single-shot"`` gets the ``"all-search single-shot"`` numbers)."""
    table = []
    settings = list(dict.fromkeys(s for per in rows.values() for s in per))
    for s in settings:
        for model, per in rows.items():
            if s not in per:
                continue
            m = per[s]
            cells = [
                f"{m[k]:.2f} ± {m.get(k + '_std', 0.0):.2f}" if k in m else "–"
                for k in TABLE_METRICS
            ]
            table.append([model, s, m.get("trials", 1), *cells])
        for key, by_method in reported.items():
            if s.endswith(key):
                for method, m in by_method.items():
                    cells = [f"{m[k]:.2f}" if k in m else "–" for k in TABLE_METRICS]
                    table.append([f"{method} (reported)", s, "–", *cells])
    return tabulate(table, headers=["model", "setting", "trials", *TABLE_METRICS], tablefmt="pipe")
