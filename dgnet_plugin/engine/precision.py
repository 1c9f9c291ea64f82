"""Mixed precision and the CUDA speed options of the engines.

``SOLVER.AMP`` (``bf16`` | ``fp16`` | ``off``) selects autocast and, for fp16, one
``torch.amp.GradScaler`` per optimisation phase of an iteration (DG-Net: the D update, then
the joint G + Ea update, so an overflow in one phase never lowers the other's scale).
``MODEL.CHANNELS_LAST``, ``MODEL.COMPILE`` and ``CUDNN_BENCHMARK`` are CUDA options. On CPU
every one of them is a no-op (training runs in float32) and the engine says so in one log line.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import torch
from torch import nn

from ..config import ConfigError
from ..utils import comm

logger = logging.getLogger("dgnet_plugin")

#: ``SOLVER.AMP`` values and the autocast dtype of each (``None``: float32, no autocast).
AMP_MODES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def check_amp(value: str) -> str:
    """``value`` if it is a valid ``SOLVER.AMP``; raises :class:`ConfigError` otherwise."""
    if value not in AMP_MODES:
        raise ConfigError(
            f"SOLVER.AMP '{value}' is unknown; choose one of: {' | '.join(AMP_MODES)} "
            "(bf16 = bfloat16 autocast, fp16 = float16 autocast with a GradScaler, off = float32)"
        )
    return value


class PhaseUpdater:
    """The update phases of one engine: autocast, and per phase one loss scaler and the
    backward + gradient averaging + optimiser steps (:meth:`backward_step`).

    Args:
        mode: a ``SOLVER.AMP`` value, applied on any device (the engine builds it with
            :meth:`for_device`, which turns it off on CPU).
        device_type: ``"cuda"`` or ``"cpu"``.
        phases: names of the backward/step phases of one iteration; under fp16 each gets its
            own ``GradScaler`` (scale, step, update once per phase and iteration).

    Under fp16, a phase whose gradients hold Inf/NaN is skipped by its scaler, which lowers
    its scale; the loss values the engine logs are the unscaled ones, so a skipped step never
    trips the non-finite-loss guard (only a loss that is itself NaN/Inf does).
    """

    def __init__(self, mode: str, device_type: str, phases: Sequence[str] = ("main",)):
        self.mode = check_amp(mode)
        self.device_type = device_type
        self.dtype = AMP_MODES[mode]
        self.scalers: dict[str, torch.amp.GradScaler] = (
            {p: torch.amp.GradScaler(device_type) for p in phases} if mode == "fp16" else {}
        )
        #: ids of the parameters whose gradients a ``DistributedDataParallel`` wrapper
        #: averages (registered by :meth:`IterationTrainer.ddp`); see :meth:`backward_step`
        self.ddp_params: set[int] = set()

    @classmethod
    def for_device(cls, mode: str, device: torch.device, phases: Sequence[str] = ("main",)):
        """The engine's precision: ``mode`` on CUDA, float32 on any other device."""
        check_amp(mode)
        return cls(mode if device.type == "cuda" else "off", device.type, phases)

    def autocast(self):
        """``torch.autocast`` in the mode's dtype, or a no-op context in float32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, *optimizers, phase: str = "main") -> None:
        """``loss.backward()``, then ``step()`` of each optimiser (gradients zeroed by the
        caller). Several processes: a ``DistributedDataParallel`` wrapper averages its
        parameters' gradients during the backward; the gradients of every other parameter of
        ``optimizers`` are averaged over processes before the step (one ``all_reduce`` per
        call), so an engine that wraps nothing still takes the step of the global batch
        (every rank must produce gradients for the same parameters). Under fp16: scaled
        backward, ``scaler.step`` of each optimiser (skipped when its gradients are not
        finite: the averaged gradients are the same on every rank, so every rank skips the
        same steps), then one ``scaler.update``. No host synchronisation with fused
        optimisers (:func:`~dgnet_plugin.engine.optim.with_fast_impl` on CUDA)."""
        scaler = self.scalers.get(phase)
        if scaler is None:
            loss.backward()
            self.average_gradients(optimizers)
            for opt in optimizers:
                opt.step()
            return
        scaler.scale(loss).backward()
        self.average_gradients(optimizers)
        for opt in optimizers:
            scaler.step(opt)
        scaler.update()

    def average_gradients(self, optimizers) -> None:
        """Average over processes the gradients of the parameters of ``optimizers`` that no
        DDP wrapper averaged (:attr:`ddp_params`); nothing in a single process."""
        if not comm.is_distributed():
            return
        groups: dict[tuple, list[torch.Tensor]] = {}
        for opt in optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None and id(p) not in self.ddp_params:
                        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
        for grads in groups.values():
            comm.all_reduce_mean_(grads)

    def checkpointables(self) -> dict[str, torch.amp.GradScaler]:
        """The scalers, for the checkpointer (``grad_scaler_<phase>``; none unless fp16)."""
        return {f"grad_scaler_{p}": s for p, s in self.scalers.items()}

    def scales(self) -> dict[str, float]:
        """Current loss scale of each phase (reads the device: call at logging time only)."""
        return {f"loss_scale_{p}": s.get_scale() for p, s in self.scalers.items()}

    def describe(self) -> str:
        if self.dtype is None:
            return "float32"
        return f"autocast {self.mode}" + (" + GradScaler per phase" if self.scalers else "")


def _on(flag: bool) -> str:
    return "on" if flag else "off"


class SpeedOptions:
    """``MODEL.CHANNELS_LAST``, ``MODEL.COMPILE`` and ``CUDNN_BENCHMARK``, on for CUDA only.

    Building it sets ``torch.backends.cudnn.benchmark`` (CUDA) and logs what applies.
    """

    def __init__(self, cfg, device: torch.device, precision: PhaseUpdater | None = None):
        cuda = device.type == "cuda"
        self.channels_last = cuda and bool(cfg.MODEL.CHANNELS_LAST)
        self.compile = cuda and bool(cfg.MODEL.COMPILE)
        self.cudnn_benchmark = cuda and bool(cfg.CUDNN_BENCHMARK)
        if cuda:
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
            logger.info(
                "Speed on %s: %s, channels_last %s, torch.compile %s, cudnn.benchmark %s",
                device,
                precision.describe() if precision is not None else "float32",
                *(_on(v) for v in (self.channels_last, self.compile, self.cudnn_benchmark)),
            )
        else:
            logger.info(
                "Speed on %s: float32; SOLVER.AMP=%s, MODEL.CHANNELS_LAST, MODEL.COMPILE and "
                "CUDNN_BENCHMARK apply to CUDA only and are off",
                device,
                cfg.SOLVER.AMP,
            )

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module`` in the channels_last memory format when that is on (in place)."""
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        return module

    def memory_format(self, t: torch.Tensor) -> torch.memory_format:
        """The memory format a batch tensor ``t`` should have on the device."""
        return torch.channels_last if self.channels_last and t.dim() == 4 else torch.preserve_format


#: The former name (it also runs the update phases, hence the new one).
MixedPrecision = PhaseUpdater
