"""Evaluate a re-ID model on test sets and format the leaderboard table."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.data import DataLoader

from ..utils import comm
from ..utils import torchreid_compat as tr
from .cross_modality import (
    evaluate_regdb,
    evaluate_sysu_mm01,
    format_cross_modality_table,
    load_rand_perm_cam,
    mean_over_trials,
)
from .features import extract_features_distributed
from .ranking import distance, evaluate_distmat, evaluate_features, multi_query_features

logger = logging.getLogger(__name__)

METRIC_NAMES = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")


def rerank_distance(qf, gf, metric, k1, k2, lam) -> np.ndarray:
    """k-reciprocal re-ranking (torchreid's ``re_ranking``) of query x gallery distances.
    Builds the full (Q+G) x (Q+G) matrices: use it on data sets that fit in memory."""
    args = [distance(a, b, metric).cpu().numpy() for a, b in ((qf, gf), (qf, qf), (gf, gf))]
    return tr.utils.re_ranking(*args, k1=k1, k2=k2, lambda_value=lam)


def _visrank(qf, gf, loaders, test_cfg, save_dir):
    n = min(test_cfg.VISRANK_MAX_QUERIES, qf.shape[0])
    dist = distance(qf[:n], gf, test_cfg.METRIC).cpu().numpy()
    query, gallery = loaders["query"].dataset.items[:n], loaders["gallery"].dataset.items
    h, w = _image_size(loaders)
    tr.utils.visualize_ranked_results(
        dist,
        (query, gallery),
        "image",
        width=w,
        height=h,
        save_dir=save_dir,
        topk=test_cfg.VISRANK_TOPK,
    )


def _image_size(loaders) -> tuple[int, int]:
    img = loaders["query"].dataset[0]["img"]
    return int(img.shape[1]), int(img.shape[2])


@torch.no_grad()
def evaluate_reid_model(
    model, test_sets: dict, device, test_cfg, output_dir=None, query_transform=None
) -> dict:
    """``{dataset: {Rank-1, Rank-5, Rank-10, Rank-20, mAP, mAP_market, mINP}}`` in percent.

    Features: :func:`extract_features` (flip-averaged with ``TEST.FLIP``, per-part
    L2-normalised); then ``query_transform`` (a method's query-side function of the ``(Q,
    D)`` query features, e.g. DG-Net's weighting of the fine-grained half; ``None``: as
    they are) on the single- and multi-query features;
    ranking: :func:`evaluate_features` chunked on ``device`` (``TEST.METRIC``,
    ``TEST.MEMORY_MB``), or re-ranked distances with ``TEST.RERANK``. With
    ``TEST.MULTI_QUERY_DIR`` a ``<dataset> (multi-query)`` entry is added; with
    ``TEST.VISRANK`` ranked lists are drawn into ``output_dir/visrank/<dataset>``.

    With several processes every rank must call it: each extracts the features of its shard
    (:func:`extract_features_distributed`), rank 0 ranks, draws and logs, and every rank
    returns rank 0's results.
    """
    t = test_cfg
    results = {}
    query = query_transform or (lambda f: f)
    for name, loaders in test_sets.items():
        qf, q_pids, q_camids = extract_features_distributed(
            model, loaders["query"], device, t.FLIP, f"{name} query"
        )
        gf, g_pids, g_camids = extract_features_distributed(
            model, loaders["gallery"], device, t.FLIP, f"{name} gallery"
        )
        if t.MULTI_QUERY_DIR:
            mq = _multi_query_loader(t.MULTI_QUERY_DIR, loaders["query"])
            mf, m_pids, m_camids = extract_features_distributed(
                model, mq, device, t.FLIP, f"{name} multi-query"
            )
        if not comm.is_main_process():
            continue
        ids = (q_pids, g_pids, q_camids, g_camids)
        if loaders.get("protocol"):  # visible-infrared: SYSU-MM01 / RegDB protocols
            results.update(_cross_modality(name, loaders["protocol"], qf, gf, ids, t))
            continue
        qf = query(qf).to(device)
        gf = gf.to(device)
        if t.RERANK:
            d = rerank_distance(qf, gf, t.METRIC, t.RERANK_K1, t.RERANK_K2, t.RERANK_LAMBDA)
            metrics = evaluate_distmat(d, *ids)
        else:
            metrics = evaluate_features(
                qf,
                gf,
                *ids,
                metric=t.METRIC,
                memory_mb=t.MEMORY_MB,
                cuhk03_classic=t.CUHK03_CLASSIC,
            )
        results[name] = _percent(metrics)
        if t.MULTI_QUERY_DIR:
            mf = query(mf).to(device)
            mqf = multi_query_features(qf, q_pids, q_camids, mf, m_pids, m_camids)
            results[f"{name} (multi-query)"] = _percent(
                evaluate_features(mqf, gf, *ids, metric=t.METRIC, memory_mb=t.MEMORY_MB)
            )
        if t.VISRANK and output_dir:
            _visrank(qf, gf, loaders, t, os.path.join(output_dir, "visrank", name))
        logger.info("%s: %s", name, results[name])
    return comm.broadcast_object(results)


def _cross_modality(name: str, protocol: str, qf, gf, ids, t) -> dict:
    """``{"<dataset> <setting>": metrics in %}`` of a cross-modality test set (SYSU-MM01:
    every mode x shot of ``TEST.CROSS_MODALITY`` over its trials; RegDB: both directions),
    with the mean / std table (and the reported numbers) logged."""
    q_pids, g_pids, q_camids, g_camids = ids
    c = t.CROSS_MODALITY
    if protocol == "sysu_mm01":
        perm = load_rand_perm_cam(c.RAND_PERM_FILE) if c.RAND_PERM_FILE else None
        res = evaluate_sysu_mm01(
            qf,
            gf,
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            c.MODES,
            c.SHOTS,
            c.TRIALS,
            perm,
            t.METRIC,
        )
    elif protocol == "regdb":
        res = mean_over_trials([evaluate_regdb(qf, gf, q_pids, g_pids, t.METRIC)])
    else:
        raise ValueError(f"unknown cross-modality protocol '{protocol}'")
    out = {f"{name} {s}": _percent(m) for s, m in res.items()}
    logger.info("%s (%s protocol):\n%s", name, protocol, format_cross_modality_table({"ours": out}))
    return out


def _percent(metrics: dict) -> dict:
    return {
        k: v if k == "trials" else 100.0 * v for k, v in metrics.items() if k != "num_valid_queries"
    }


def _multi_query_loader(folder: str, like: DataLoader) -> DataLoader:
    from ..data.datasets import scan_market_folder
    from ..data.pairs import ImageListDataset

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"TEST.MULTI_QUERY_DIR '{folder}' is not a folder (Market gt_bbox)")
    items = scan_market_folder(folder, relabel=False, drop_junk=True)
    ds = ImageListDataset(items, like.dataset.transform)
    return DataLoader(ds, batch_size=like.batch_size, num_workers=like.num_workers)


def format_results_table(rows: dict[str, dict[str, dict]]) -> str:
    """``{model: {dataset: metrics}}`` -> a pipe table (model, dataset, R1, R5, R10, mAP, mINP)."""
    table = [
        [model, ds] + [m[k] for k in METRIC_NAMES]
        for model, per_ds in rows.items()
        for ds, m in per_ds.items()
    ]
    return tabulate(
        table,
        headers=["model", "dataset", *METRIC_NAMES],
        tablefmt="pipe",
        floatfmt=".2f",
        numalign="left",
    )
