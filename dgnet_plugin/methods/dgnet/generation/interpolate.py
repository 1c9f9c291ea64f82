"""Linear interpolation of one code with the other fixed (paper Fig. 5 and Fig. 9)."""

from __future__ import annotations

import os

import torch
from torchvision.utils import make_grid, save_image

from ....utils.visualization import denormalize
from .common import appearance_codes, decode, structure_codes


def _pair(x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
    x_a = x_a.unsqueeze(0) if x_a.dim() == 3 else x_a
    x_b = x_b.unsqueeze(0) if x_b.dim() == 3 else x_b
    return torch.cat([x_a[:1], x_b[:1]])


def _weights(steps: int, like: torch.Tensor) -> torch.Tensor:
    if steps < 2:
        raise ValueError(f"interpolation needs at least 2 steps, got {steps}")
    return torch.linspace(0, 1, steps, device=like.device, dtype=like.dtype)


@torch.no_grad()
def interpolate_appearance(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8):
    """Structure of ``x_a`` fixed; appearance code ``(1 - t) f_a + t f_b`` for ``t`` in
    ``linspace(0, 1, steps)``.

    ``x_a``, ``x_b``: ImageNet-normalised ``(3, H, W)`` (or ``(1, 3, H, W)``) on the model's
    device. Returns ImageNet-normalised ``(steps, 3, H, W)``; the first image is
    ``G(s_a, f_a)``, the last ``G(s_a, f_b)``.
    """
    x = _pair(x_a, x_b)
    f_a, f_b = appearance_codes(model, x)
    s_a = structure_codes(model, x[:1])
    t = _weights(steps, f_a).view(-1, 1)
    f = (1 - t) * f_a + t * f_b
    return decode(model, s_a.expand(steps, *s_a.shape[1:]), f)


@torch.no_grad()
def interpolate_structure(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8):
    """Appearance of ``x_a`` fixed; structure code ``(1 - t) s_a + t s_b`` for ``t`` in
    ``linspace(0, 1, steps)``. Shapes as :func:`interpolate_appearance`; the first image
    is ``G(s_a, f_a)``, the last ``G(s_b, f_a)``."""
    x = _pair(x_a, x_b)
    f_a = appearance_codes(model, x[:1])
    s_a, s_b = structure_codes(model, x)
    t = _weights(steps, s_a).view(-1, *([1] * s_a.dim()))
    s = (1 - t) * s_a + t * s_b
    return decode(model, s, f_a.expand(steps, *f_a.shape[1:]))


def strip(x_a: torch.Tensor, x_b: torch.Tensor, generated: torch.Tensor, mean, std, padding=2):
    """One row ``[x_a, generated..., x_b]`` in ``[0, 1]``: ``(3, H + 2p, (K + 2)(W + p) + p)``
    for ``K`` generated images. Inputs are ImageNet-normalised (``(3, H, W)`` or
    ``(1, 3, H, W)`` for the two ends, ``(K, 3, H, W)`` for ``generated``)."""
    x = _pair(x_a, x_b)
    cells = torch.cat([x[:1], generated.to(x.dtype).to(x.device), x[1:]])
    return make_grid(denormalize(cells, mean, std).cpu(), nrow=cells.shape[0], padding=padding)


def save_strip(x_a, x_b, generated, path: str, mean, std) -> torch.Tensor:
    """:func:`strip` written to ``path`` (parent folders created); returns the strip."""
    image = strip(x_a, x_b, generated, mean, std)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(image, path)
    return image
