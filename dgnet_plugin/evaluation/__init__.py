"""Evaluation: features, the single-query ranking protocol, result tables."""

from .evaluator import evaluate_reid_model, format_results_table
from .features import extract_features, extract_features_distributed
from .fusion import FUSION_MODES, fuse_features
from .ranking import (
    evaluate_distmat,
    evaluate_features,
    multi_query_features,
)

__all__ = [
    "FUSION_MODES",
    "fuse_features",
    "evaluate_distmat",
    "evaluate_features",
    "multi_query_features",
    "evaluate_reid_model",
    "extract_features",
    "extract_features_distributed",
    "format_results_table",
]
