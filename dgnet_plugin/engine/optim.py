"""Optimisers and per-iteration schedules, through torchreid's builders."""

from __future__ import annotations

from ..utils import torchreid_compat as tr


def build_reid_optimizer(cfg, model, head_names):
    """``SOLVER.REID.OPTIM`` (official: SGD with Nesterov momentum) with the backbone at
    ``SOLVER.REID.BASE_LR`` and the heads named in ``head_names`` at ``HEADS_LR_FACTOR`` x
    (torchreid's ``staged_lr``). Adam variants use ``SOLVER.GEN.BETAS``-style defaults
    (0.9, 0.999)."""
    s = cfg.SOLVER.REID
    return tr.optim.build_optimizer(
        model,
        optim=s.OPTIM,
        lr=s.BASE_LR * s.HEADS_LR_FACTOR,
        weight_decay=s.WEIGHT_DECAY,
        momentum=s.MOMENTUM,
        sgd_nesterov=s.NESTEROV,
        staged_lr=True,
        new_layers=list(head_names),
        base_lr_mult=1.0 / s.HEADS_LR_FACTOR,
        adam_beta1=0.9,
        adam_beta2=0.999,
    )


def build_adam(model, solver_cfg):
    """Adam with ``solver_cfg.{LR, BETAS, WEIGHT_DECAY}`` (``SOLVER.GEN`` / ``SOLVER.DIS``)."""
    return tr.optim.build_optimizer(
        model,
        optim="adam",
        lr=solver_cfg.LR,
        weight_decay=solver_cfg.WEIGHT_DECAY,
        adam_beta1=solver_cfg.BETAS[0],
        adam_beta2=solver_cfg.BETAS[1],
    )


def build_iter_scheduler(optimizer, steps, gamma):
    """MultiStepLR whose milestones are iterations (the engine steps it every iteration)."""
    return tr.optim.build_lr_scheduler(
        optimizer, lr_scheduler="multi_step", stepsize=list(steps), gamma=gamma
    )
