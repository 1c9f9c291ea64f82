"""The one place that knows torchreid's quirks (PyPI 0.2.5 vs GitHub master layout).

PyPI ``torchreid==0.2.5`` ships the code under ``torchreid.reid.*`` and only attribute
access works (``import torchreid.data`` fails); GitHub master has ``torchreid.*``.
Everything else in the package imports torchreid through this module.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # 0.2.5 has no Cython ranking and warns at import; we know, and say so in the docs.
    warnings.filterwarnings("ignore", message="Cython evaluation")
    import torchreid

_reid = getattr(torchreid, "reid", torchreid)

data = _reid.data
engine = _reid.engine
losses = _reid.losses
metrics = _reid.metrics
models = _reid.models
optim = _reid.optim
utils = _reid.utils

Engine = engine.Engine
ImageDataset = data.ImageDataset
ImageDataManager = data.ImageDataManager
RandomErasing = data.transforms.RandomErasing
RandomIdentitySampler = data.sampler.RandomIdentitySampler
evaluate_rank = metrics.evaluate_rank


def image_dataset_registry() -> dict:
    """torchreid's module-private name -> class dict of image datasets."""
    return getattr(data.datasets, "__image_datasets")


def model_factory() -> dict:
    """torchreid's module-private name -> factory dict used by ``build_model``."""
    return getattr(models, "__model_factory")


def register_image_dataset(name: str, dataset: type) -> None:
    """Idempotent ``torchreid.data.register_image_dataset`` (torchreid raises on a repeat).

    The same class re-imported (same module and name, e.g. after ``importlib.reload``) replaces
    the old entry; a different class under a taken name raises ``ValueError``.
    """
    registry = image_dataset_registry()
    old = registry.get(name)
    if old is None:
        data.register_image_dataset(name, dataset)
    elif (old.__module__, old.__qualname__) == (dataset.__module__, dataset.__qualname__):
        registry[name] = dataset
    else:
        raise ValueError(f"torchreid already has a different image dataset named '{name}'")


def register_model(name: str, factory) -> None:
    """Inject ``factory`` into ``torchreid.models.build_model`` under ``name`` (idempotent)."""
    model_factory()[name] = factory


def init_image_dataset(name: str, **kwargs):
    """``torchreid.data.datasets.init_image_dataset`` (torchreid names plus ours)."""
    return data.datasets.init_image_dataset(name, **kwargs)
