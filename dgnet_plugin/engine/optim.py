"""Optimisers and per-iteration schedules, through torchreid's builders."""

from __future__ import annotations

import bisect

import torch

from ..utils import torchreid_compat as tr

#: torch optimisers with a fused implementation (CUDA and CPU), and with a foreach one.
_FUSED = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
_FOREACH = (*_FUSED, torch.optim.RMSprop)
_IMPL_KEYS = ("fused", "foreach")


def with_fast_impl(optimizer, device: torch.device | None):
    """The same optimiser (class, parameter groups, hyper-parameters) with the fastest update
    implementation: fused kernels for Adam, AdamW and SGD on CUDA and CPU (one kernel over all
    parameters; on CUDA they also let a ``GradScaler`` skip an overflowed step without a host
    synchronisation; on a 2-core CPU 4-6x faster than torch's default), ``foreach`` for
    RMSprop. torchreid's RAdam, or ``device=None``, is returned unchanged. Call it before
    building the scheduler (which keeps a reference to the optimiser)."""
    cls = type(optimizer)
    if device is None or cls not in _FOREACH or optimizer.state:
        return optimizer
    fused = cls in _FUSED and device.type in ("cpu", "cuda")
    flags = {"fused": True} if fused else {"foreach": True}
    groups = [{k: v for k, v in g.items() if k not in _IMPL_KEYS} for g in optimizer.param_groups]
    return cls(groups, **flags)


def restore_impl(optimizer) -> None:
    """Put back the implementation ``optimizer`` was built with after ``load_state_dict``,
    which takes ``fused`` / ``foreach`` from the checkpoint (e.g. written on another device)."""
    flags = {k: optimizer.defaults[k] for k in _IMPL_KEYS if k in optimizer.defaults}
    if all(g.get(k) == v for g in optimizer.param_groups for k, v in flags.items()):
        return
    for g in optimizer.param_groups:
        g.update(flags)
    optimizer.load_state_dict(optimizer.state_dict())  # re-homes fused 'step' counters


def build_reid_optimizer(cfg, model, head_names, device: torch.device | None = None):
    """``SOLVER.REID.OPTIM`` (official: SGD with Nesterov momentum) with the backbone at
    ``SOLVER.REID.BASE_LR`` and the heads named in ``head_names`` at ``HEADS_LR_FACTOR`` x
    (torchreid's ``staged_lr``). Adam variants use ``SOLVER.GEN.BETAS``-style defaults
    (0.9, 0.999). ``device``: see :func:`with_fast_impl`."""
    s = cfg.SOLVER.REID
    opt = tr.optim.build_optimizer(
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
    return with_fast_impl(opt, device)


def build_adam(model, solver_cfg, device: torch.device | None = None):
    """Adam with ``solver_cfg.{LR, BETAS, WEIGHT_DECAY}`` (``SOLVER.GEN`` / ``SOLVER.DIS``).
    ``device``: see :func:`with_fast_impl`."""
    opt = tr.optim.build_optimizer(
        model,
        optim="adam",
        lr=solver_cfg.LR,
        weight_decay=solver_cfg.WEIGHT_DECAY,
        adam_beta1=solver_cfg.BETAS[0],
        adam_beta2=solver_cfg.BETAS[1],
    )
    return with_fast_impl(opt, device)


def warmup_multistep_factor(
    it: int, warmup: int, steps, gamma: float, start: int = 0, stages: int = 0
) -> float:
    """LR factor at iteration ``it``: during a warm-up of ``warmup`` iterations from iteration
    ``start`` (where a network's own training begins, e.g. D2RL's T_F after the translators'
    warm-up), ``(it - start + 1) / warmup`` (linear per iteration, ``stages=0``) or, with
    ``stages=n > 0``, ``(floor((it - start) * n / warmup) + 1) / n``: ``n`` equal constant
    stages at ``1/n, 2/n, ..., 1`` (AGW's per-epoch warm-up with ``n`` = 10 epochs,
    mangye16/Cross-Modal-Re-ID-baseline ``train.py`` ``adjust_learning_rate``); then times
    ``gamma`` per milestone of ``steps`` passed (iterations, counted from 0)."""
    k = max(it - start, 0)
    if warmup <= 0 or k >= warmup:
        w = 1.0
    elif stages > 0:
        w = (k * stages // warmup + 1) / stages
    else:
        w = (k + 1) / warmup
    return w * gamma ** bisect.bisect_right(list(steps), it)


def build_warmup_scheduler(
    optimizer, warmup: int, steps, gamma: float, start: int = 0, stages: int = 0
):
    """Per-iteration LR schedule :func:`warmup_multistep_factor` (a warm-up over ``warmup``
    iterations from ``start``, linear or in ``stages`` steps, then x ``gamma`` at each
    iteration of ``steps``); the engine steps it every iteration."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: warmup_multistep_factor(it, warmup, steps, gamma, start, stages)
    )


def build_iter_scheduler(optimizer, steps, gamma):
    """MultiStepLR whose milestones are iterations (the engine steps it every iteration)."""
    return tr.optim.build_lr_scheduler(
        optimizer, lr_scheduler="multi_step", stepsize=list(steps), gamma=gamma
    )


def linear_decay_factor(iteration: int, decay_start: int, max_iter: int) -> float:
    """CycleGAN's learning-rate multiplier (Zhu et al. 2017, section 4: "keep the same
    learning rate for the first 100 epochs and linearly decay the rate to zero over the next
    100 epochs"), per iteration: ``1`` before ``decay_start``, then
    ``1 - (iteration - decay_start) / (max_iter - decay_start)``, which reaches 0 at
    ``max_iter`` (never below 0)."""
    if iteration < decay_start:
        return 1.0
    span = max(max_iter - decay_start, 1)
    return max(0.0, 1.0 - (iteration - decay_start) / span)


class LinearDecay:
    """Picklable ``lr_lambda`` of :func:`linear_decay_factor` (a ``LambdaLR`` checkpoint holds
    callable objects' ``__dict__``)."""

    def __init__(self, decay_start: int, max_iter: int):
        self.decay_start, self.max_iter = int(decay_start), int(max_iter)

    def __call__(self, iteration: int) -> float:
        return linear_decay_factor(iteration, self.decay_start, self.max_iter)


def build_linear_decay_scheduler(optimizer, decay_start: int, max_iter: int):
    """A per-iteration ``LambdaLR`` with CycleGAN's constant-then-linear-to-zero schedule
    (:func:`linear_decay_factor`); the engine steps it every iteration.

    Raises:
        ValueError: ``decay_start`` outside ``[0, max_iter]``.
    """
    if not 0 <= decay_start <= max_iter:
        raise ValueError(
            f"the linear LR decay must start between 0 and MAX_ITER={max_iter}, got {decay_start}"
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearDecay(decay_start, max_iter))
