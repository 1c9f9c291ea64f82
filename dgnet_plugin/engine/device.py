"""The one place where ``MODEL.DEVICE`` is interpreted.

A run resolves its device once (:func:`resolve_device`: ``auto`` -> ``cuda`` when CUDA is
available, else ``cpu``) and passes the ``torch.device`` down: the engine keeps it as
``engine.device``, a pipeline's stages get it as ``StageContext.device``, and every generator,
translator, mask or pose provider, feature extractor and evaluator takes a device argument
rather than reading ``MODEL.DEVICE``. No other module compares a device name with ``"auto"``
(``tests/test_device_resolution.py`` checks the package source for it), so a stage cannot fall
back to the CPU while training runs on CUDA.
"""

from __future__ import annotations

import os

import torch

from ..utils import comm

__all__ = ["device_name", "resolve_device"]


def device_name(name) -> str:
    """``MODEL.DEVICE`` (``auto``, ``cpu``, ``cuda``, ``cuda:K``, or a ``torch.device``) with
    ``auto`` replaced by ``cuda`` when CUDA is available, else ``cpu``; nothing is checked
    (the launcher uses it before the process group exists)."""
    name = str(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def resolve_device(name) -> torch.device:
    """``MODEL.DEVICE`` (a name or a ``torch.device``) as a device (:func:`device_name`); with
    several processes CUDA means ``cuda:LOCAL_RANK``.

    Raises:
        RuntimeError: a CUDA device is named but CUDA is not available.
    """
    name = device_name(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"MODEL.DEVICE '{name}' but CUDA is not available; use 'cpu' or 'auto'")
    if name.startswith("cuda") and comm.is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)
