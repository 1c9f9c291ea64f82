"""Shared networks: blocks, backbones, heads, and the registries of generators,
discriminators and meta-architectures (each in its folder's ``build.py``)."""

from . import backbones, discriminators, generators, heads, meta_arch  # noqa: F401 (registration)
from .meta_arch import build_model, build_reid_model

__all__ = ["build_model", "build_reid_model"]
