"""Datasets (registered with torchreid), transforms, DG-Net's positive-pair streams, loaders."""

from .build import build_pair_streams, build_test_sets, build_train_loader, load_train_set
from .datasets import DatasetNotFoundError, MarketLayout, read_image
from .pairs import PositivePairDataset

__all__ = [
    "DatasetNotFoundError",
    "MarketLayout",
    "PositivePairDataset",
    "build_pair_streams",
    "build_test_sets",
    "build_train_loader",
    "load_train_set",
    "read_image",
]
