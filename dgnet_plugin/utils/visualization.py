"""Image grids of generated samples."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn
from torchvision.utils import make_grid, save_image


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """``modules`` in eval mode under ``torch.no_grad()`` for the block; each module's own
    train/eval flag (and its children's) is restored afterwards, also when the block raises."""
    flags = [(m, m.training) for top in modules for m in top.modules()]
    try:
        for top in modules:
            top.eval()
        with torch.no_grad():
            yield
    finally:
        for m, was in flags:
            m.training = was


def denormalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """ImageNet-normalised ``(N, 3, H, W)`` -> ``[0, 1]`` (clamped)."""
    m = torch.as_tensor(mean, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
    return (x.float() * s + m).clamp(0, 1)


def save_grid(rows: list[torch.Tensor], path: str, mean, std) -> torch.Tensor:
    """One grid row per tensor of ``rows`` (each ``(N, 3, H, W)``, ImageNet-normalised);
    writes ``path`` and returns the ``(3, H', W')`` grid in [0, 1] (for TensorBoard)."""
    n = rows[0].shape[0]
    images = torch.cat([denormalize(r, mean, std).cpu() for r in rows])
    grid = make_grid(images, nrow=n, padding=2)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(grid, path)
    return grid
