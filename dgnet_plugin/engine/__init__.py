"""Engines: torchreid ``Engine`` subclasses driven by iterations, one per method."""

from .base import IterationEngine
from .build import ENGINE_REGISTRY, build_engine
from .dgnet import DGNetEngine
from .teacher import TeacherEngine, load_teacher

__all__ = [
    "ENGINE_REGISTRY",
    "DGNetEngine",
    "IterationEngine",
    "TeacherEngine",
    "build_engine",
    "load_teacher",
]
