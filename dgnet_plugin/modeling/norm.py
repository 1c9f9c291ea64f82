"""``MODEL.NORM``: the batch-norm flavour of the re-ID networks (Ea, the IDE teacher).

fastreid-style names: ``BN`` (plain ``BatchNorm``, per-process batch statistics), ``syncBN``
(``torch.nn.SyncBatchNorm``: batch statistics over the global batch of all processes; CUDA
only) and ``FrozenBN`` (running statistics for normalisation, never updated; the affine
weight and bias still learn). The generator and the discriminator have no batch norm
(instance / layer norm, AdaIN), so the setting only concerns the re-ID networks.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ConfigError

NORMS = ("BN", "syncBN", "FrozenBN")


class _FrozenMixin:
    """Batch norm that always runs as in eval mode: ``train()`` keeps ``training`` False."""

    def train(self, mode: bool = True):
        return super().train(False)


class FrozenBatchNorm1d(_FrozenMixin, nn.BatchNorm1d):
    """``BatchNorm1d`` with frozen running statistics (state dict of a ``BatchNorm1d``)."""


class FrozenBatchNorm2d(_FrozenMixin, nn.BatchNorm2d):
    """``BatchNorm2d`` with frozen running statistics (state dict of a ``BatchNorm2d``)."""


_FROZEN = {nn.BatchNorm1d: FrozenBatchNorm1d, nn.BatchNorm2d: FrozenBatchNorm2d}


def _frozen_copy(bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    cls = _FROZEN.get(type(bn))
    if cls is None:
        return bn
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:  # the same Parameter objects: optimisers built before still see them
        new.weight, new.bias = bn.weight, bn.bias
    for name, buf in bn.named_buffers(recurse=False):
        setattr(new, name, buf)
    return new.to(bn.weight.device if bn.affine else next(bn.buffers()).device)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d/2d`` in ``module`` by its frozen twin (in place for
    children; returns the module, or the replacement when ``module`` itself is a BN)."""
    if type(module) in _FROZEN:
        return _frozen_copy(module)
    for name, child in module.named_children():
        new = freeze_batchnorm(child)
        if new is not child:
            setattr(module, name, new)
    return module


def convert_norm(module: nn.Module, norm: str, device, world_size: int) -> nn.Module:
    """Apply ``MODEL.NORM`` to ``module`` (see the module docstring); returns the module.

    ``syncBN`` converts only when ``world_size > 1`` (in one process it is plain BN).

    Raises:
        ConfigError: unknown ``norm``, or ``syncBN`` with several processes on CPU
            (``SyncBatchNorm`` runs on CUDA only).
    """
    if norm not in NORMS:
        raise ConfigError(f"MODEL.NORM must be one of {', '.join(NORMS)}, got '{norm}'")
    if norm == "FrozenBN":
        return freeze_batchnorm(module)
    if norm == "syncBN" and world_size > 1:
        if torch.device(device).type != "cuda":
            raise ConfigError(
                "MODEL.NORM syncBN needs CUDA: torch.nn.SyncBatchNorm does not run on CPU. "
                "Use MODEL.NORM BN (per-process statistics) or FrozenBN on CPU"
            )
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module
