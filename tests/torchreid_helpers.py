"""Helpers of the torchreid-engine tests: real CUHK03 crops under torchreid's own
``market1501`` folder name, and small torchreid data managers on them."""

from __future__ import annotations

from pathlib import Path

from conftest import make_tiny_market

from dgnet_plugin.utils import torchreid_compat as tr

MARKET_DIR = ("market1501", "Market-1501-v15.09.15")


def make_torchreid_market(root: Path, n_train_ids: int = 4, n_test_ids: int = 12) -> Path:
    """``root/market1501/Market-1501-v15.09.15/`` of symlinks to real CUHK03 crops (the
    Market-layout copy in ../shared/data): torchreid's ``market1501`` dataset reads it.
    Returns ``root`` (torchreid's ``root``); the Market folder is ``market_folder(root)``."""
    make_tiny_market(market_folder(root), n_train_ids=n_train_ids, n_test_ids=n_test_ids)
    return root


def market_folder(root: Path) -> Path:
    return root.joinpath(*MARKET_DIR)


def datamanager(root: Path, size=(64, 32), batch: int = 8, k: int = 2, **kwargs):
    """torchreid's ImageDataManager on ``market1501`` under ``root``, P x K batches."""
    args = dict(
        root=str(root),
        sources="market1501",
        height=size[0],
        width=size[1],
        batch_size_train=batch,
        batch_size_test=64,
        workers=0,
        use_gpu=False,
        train_sampler="RandomIdentitySampler",
        num_instances=k,
        transforms=["random_flip"],
    )
    args.update(kwargs)
    return tr.ImageDataManager(**args)
