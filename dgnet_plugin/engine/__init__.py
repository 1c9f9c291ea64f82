"""The method-agnostic training core: the loop with hooks, the trainer every engine builds
on, the hooks themselves, optimisers, precision and the multi-process launch."""

from .build import ENGINE_REGISTRY, build_engine
from .defaults import IterationTrainer, resolve_device
from .hooks import NonFiniteLossError
from .train_loop import HookBase, TrainerBase

__all__ = [
    "ENGINE_REGISTRY",
    "HookBase",
    "IterationTrainer",
    "NonFiniteLossError",
    "TrainerBase",
    "build_engine",
    "resolve_device",
]
