"""Networks: shared blocks, backbones, heads, generators, discriminators, meta-architectures."""

from . import backbones, discriminators, generators, heads, meta_arch  # noqa: F401 (registration)
from .meta_arch import build_model, build_reid_model

__all__ = ["build_model", "build_reid_model"]
