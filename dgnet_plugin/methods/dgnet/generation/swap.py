"""N x N code swaps: every appearance with every structure (paper Fig. 6, ``show1by1``)."""

from __future__ import annotations

import os

import torch
from torchvision.utils import make_grid, save_image

from ....utils.visualization import denormalize
from .common import appearance_codes, decode, structure_codes


@torch.no_grad()
def swap_images(model, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """All appearance/structure combinations of ``x``.

    Args:
        model: a DG-Net-like model (see :mod:`dgnet_plugin.generation.common`), eval mode.
        x: ImageNet-normalised ``(N, 3, H, W)`` on the model's device.
        batch_size: images per decoder call (the ``N * N`` outputs are decoded in chunks).

    Returns:
        ImageNet-normalised ``(N, N, 3, H, W)``: ``out[i, j] = G(s_j, f_i)`` has the
        appearance of image ``i`` and the structure of image ``j`` (the diagonal is the
        reconstruction of each image).
    """
    n = x.shape[0]
    f, s = appearance_codes(model, x), structure_codes(model, x)
    rows = torch.arange(n, device=x.device).repeat_interleave(n)  # appearance index i
    cols = torch.arange(n, device=x.device).repeat(n)  # structure index j
    out = [
        decode(model, s[cols[k : k + batch_size]], f[rows[k : k + batch_size]])
        for k in range(0, n * n, batch_size)
    ]
    return torch.cat(out).view(n, n, *out[0].shape[1:])


def swap_grid(x: torch.Tensor, swapped: torch.Tensor, mean, std, padding: int = 2):
    """The ``(N+1) x (N+1)`` swap picture, in ``[0, 1]``, shape ``(3, H', W')`` with
    ``H' = (N+1)(H+padding)+padding`` and ``W' = (N+1)(W+padding)+padding``.

    Layout: the top-left cell is white; the header row holds the inputs as **structure**
    sources (column ``j`` = image ``j``); the header column holds the inputs as **appearance**
    sources (row ``i`` = image ``i``); cell ``(i, j)`` is ``G(s_j, f_i)``.

    Args:
        x: the ImageNet-normalised inputs ``(N, 3, H, W)``.
        swapped: :func:`swap_images` of ``x``, ``(N, N, 3, H, W)``.
        mean, std: the normalisation (``INPUT.PIXEL_MEAN`` / ``INPUT.PIXEL_STD``).
    """
    n = x.shape[0]
    real = denormalize(x, mean, std).cpu()
    fake = denormalize(swapped.flatten(0, 1), mean, std).cpu().view(n, n, *real.shape[1:])
    cells = [torch.ones_like(real[0]), *real]
    for i in range(n):
        cells += [real[i], *fake[i]]
    return make_grid(torch.stack(cells), nrow=n + 1, padding=padding)


def save_swap_grid(model, x: torch.Tensor, path: str, mean, std, batch_size: int = 64):
    """:func:`swap_images` + :func:`swap_grid`, written to ``path`` (torchvision
    ``save_image``; parent folders are created). Returns the ``(3, H', W')`` grid in [0, 1]."""
    grid = swap_grid(x, swap_images(model, x, batch_size), mean, std)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(grid, path)
    return grid
