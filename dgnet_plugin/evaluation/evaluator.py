"""Evaluate a re-ID model on test sets and format the leaderboard table."""

from __future__ import annotations

import logging

import torch
from tabulate import tabulate

from .features import combine_query_features, extract_features
from .ranking import evaluate_ranking

logger = logging.getLogger(__name__)

METRIC_NAMES = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")


@torch.no_grad()
def evaluate_reid_model(model, test_sets: dict, device, flip=True, alpha=0.5) -> dict:
    """``{dataset: {Rank-1, Rank-5, Rank-10, mAP, mINP}}`` in percent.

    Features: :func:`extract_features` (flip-averaged, per-part L2-normalised); query side
    weighted by :func:`combine_query_features` (``alpha``); distance = 1 - cosine similarity.
    """
    results = {}
    parts = tuple(getattr(model, "feature_parts", ()))
    for name, loaders in test_sets.items():
        qf, q_pids, q_camids = extract_features(
            model, loaders["query"], device, flip, f"{name} query"
        )
        gf, g_pids, g_camids = extract_features(
            model, loaders["gallery"], device, flip, f"{name} gallery"
        )
        qf = combine_query_features(qf, parts or (qf.shape[1],), alpha)
        distmat = (1.0 - qf @ gf.t()).numpy()
        metrics = evaluate_ranking(distmat, q_pids, g_pids, q_camids, g_camids)
        results[name] = {k: 100.0 * v for k, v in metrics.items()}
        logger.info("%s: %s", name, results[name])
    return results


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
