"""Run a module as a frozen copy of itself, without copying it."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d)


def frozen_forward(module: nn.Module, *args, keep_dropout: bool = False, **kwargs):
    """``module(*args, **kwargs)`` with detached parameters and throw-away buffers.

    Gradients flow to the inputs but never to ``module``'s parameters, and batch-norm running
    statistics are left untouched; dropout is off (``keep_dropout``: dropout layers keep
    their own mode). This replaces DG-Net's per-iteration
    ``copy.deepcopy(Ea)`` (an eval-mode copy whose BN layers stay in training mode): BN keeps
    the module's own train/eval mode, so in training it normalises with batch statistics.
    """
    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = {k: v.clone() for k, v in module.named_buffers()}
    toggled = [
        m for m in module.modules() if isinstance(m, _DROPOUT) and m.training and not keep_dropout
    ]
    for m in toggled:
        m.eval()
    try:
        return functional_call(module, (params, buffers), args, kwargs)
    finally:
        for m in toggled:
            m.train()


@torch.no_grad()
def teacher_forward(
    module: nn.Module, x: torch.Tensor, train_bn: bool = True, train_dropout: bool = False
) -> torch.Tensor:
    """Teacher logits ``(N, K)`` without gradient; with ``train_bn`` BN uses batch statistics
    (official ``train_bn: true``) without updating the teacher's running statistics; with
    ``train_dropout`` its dropout layers are in training mode (the official teacher after its
    trainer's first ``sample()``: see ``MODEL.TEACHER.DROPOUT_AFTER``)."""
    was_training = module.training
    module.eval()
    for m in module.modules():
        if train_bn and isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
        if train_dropout and isinstance(m, _DROPOUT):
            m.train()
    try:
        out = frozen_forward(module, x, keep_dropout=train_dropout, return_all=True)
        return out["logits"][0]
    finally:
        module.train(was_training)
