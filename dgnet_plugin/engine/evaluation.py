"""``--eval-only``: evaluate a checkpoint on ``DATASETS.TESTS`` without a training set.

The architecture's identity count comes from the checkpoint (:func:`~.loading.load_model`),
so a model trained on one dataset is evaluated on others (train on A, test on B: each
``DATASETS.TESTS`` entry may name its own root, ``name@/path/to/root``). The evaluation and
its report (table, ``metrics.json``) are those of :meth:`~.defaults.IterationTrainer.test`.
"""

from __future__ import annotations

import logging
import os

from ..config import ConfigError
from ..data import build_test_sets
from ..evaluation import evaluate_reid_model
from ..utils import comm
from ..utils.events import JSONWriter
from ..utils.registry import lookup
from .build import ENGINE_REGISTRY
from .defaults import report_results, resolve_device
from .loading import load_model
from .precision import SpeedOptions

logger = logging.getLogger("dgnet_plugin")


def evaluate_checkpoint(cfg) -> dict:
    """Evaluate the re-ID network of ``MODEL.WEIGHTS`` (built as ``cfg``'s
    ``MODEL.META_ARCHITECTURE`` with the checkpoint's identity count) on ``DATASETS.TESTS``;
    log the table and append the results to ``OUTPUT_DIR/metrics.json`` (iteration 0).
    Returns ``{dataset: {Rank-1, ..., mINP}}`` (%). Every rank calls it (features are
    extracted in shards) and gets the results; rank 0 writes them.

    Raises:
        ConfigError: no ``MODEL.WEIGHTS``, a model without a re-ID network, or no test set.
        CheckpointError: the checkpoint is missing, unreadable or does not fit the
            architecture (the message names the file and the first weight that differs).
    """
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError("--eval-only needs MODEL.WEIGHTS (a checkpoint written by training)")
    engine = lookup(ENGINE_REGISTRY, cfg.ENGINE.NAME, "ENGINE.NAME")
    if not engine.check_meta_architecture(cfg) or not cfg.DATASETS.TESTS:
        raise ConfigError(
            f"MODEL.META_ARCHITECTURE '{cfg.MODEL.META_ARCHITECTURE}' has no re-ID "
            "network to evaluate, or DATASETS.TESTS is empty"
        )
    device = resolve_device(cfg.MODEL.DEVICE)
    model, _ = load_model(cfg, cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE)
    logger.info("Loaded weights from %s", cfg.MODEL.WEIGHTS)
    model = SpeedOptions(cfg, device).prepare(model)
    test_sets = build_test_sets(cfg)
    reid = model.reid
    query = engine.query_transform(cfg, reid)
    results = evaluate_reid_model(reid, test_sets, device, cfg.TEST, cfg.OUTPUT_DIR, query)
    if comm.is_main_process():
        metrics = JSONWriter(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))
        report_results({type(reid).__name__: results}, results, 0, metrics)
    return results
