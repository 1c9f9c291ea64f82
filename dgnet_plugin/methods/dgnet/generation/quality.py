"""What a person sees in DG-Net's generated images, as numbers (issue: a main job that
visibly works): self-reconstruction SSIM beside two references, and whether a swap keeps the
structure image's pose and takes the appearance image's colours.

Every function takes a DG-Net-like model (see :mod:`.common`) and ImageNet-normalised
``(N, 3, H, W)`` images (``N >= 2``, ``H, W >= 11``) with the ``mean``/``std`` they were
normalised with; SSIM is :func:`dgnet_plugin.evaluation.generation_quality.ssim`
(torchmetrics) on ``[0, 1]`` images.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms.functional import gaussian_blur

from ....evaluation.generation_quality import ssim
from ....modeling.blocks import to_gray
from ....utils.visualization import denormalize
from .common import appearance_codes, decode, structure_codes


def strong_blur(x01: torch.Tensor) -> torch.Tensor:
    """A strongly blurred copy of ``[0, 1]`` images: Gaussian, sigma = H / 16 (4 px at 64x32,
    16 px at 256x128), the largest odd kernel up to 6 sigma that fits the image."""
    h, w = x01.shape[-2:]
    sigma = max(1.0, h / 16)
    k = min(2 * math.ceil(3 * sigma) + 1, 2 * (min(h, w) // 2) - 1)
    return gaussian_blur(x01, [k, k], [sigma, sigma])


@torch.no_grad()
def reconstruction_ssim(model, x: torch.Tensor, mean, std) -> dict[str, float]:
    """Mean SSIM of each image to its self-reconstruction ``G(Es(x), Ea(x))``, and two
    references: to a random other image of the batch (the next one; what "no information"
    scores) and to a strongly blurred copy of itself (:func:`strong_blur`; what a blurry
    silhouette of the right colours scores)."""
    rec = decode(model, structure_codes(model, x), appearance_codes(model, x))
    x01, r01 = denormalize(x, mean, std), denormalize(rec, mean, std)
    return {
        "recon_ssim": ssim(x01, r01).mean().item(),
        "random_image_ssim": ssim(x01, x01.roll(1, 0)).mean().item(),
        "blurred_copy_ssim": ssim(x01, strong_blur(x01)).mean().item(),
    }


def colour_histogram_distance(a01: torch.Tensor, b01: torch.Tensor, bins: int = 16):
    """Per pair, the total-variation distance (0 = same, 1 = disjoint) between the colour
    histograms of ``a`` and ``b`` (``bins`` bins per channel in ``[0, 1]``), averaged over the
    channels. ``(N, C, H, W)`` -> ``(N,)``."""
    n, c = a01.shape[:2]

    def hist(t):
        idx = (t.nan_to_num(0.0).clamp(0, 1) * bins).long().clamp(max=bins - 1).flatten(2)
        h = torch.zeros(n, c, bins, device=t.device)
        h.scatter_add_(2, idx, torch.ones_like(t.flatten(2)))
        return h / h.sum(2, keepdim=True)

    return 0.5 * (hist(a01) - hist(b01)).abs().sum(2).mean(1)


def central_chroma(x01: torch.Tensor) -> torch.Tensor:
    """Mean chroma ``(Cb, Cr)`` (ITU-R BT.601 YCbCr, ``[0, 1]``, grey = 0.5) of the central
    region of ``[0, 1]`` RGB images: rows ``H/8 .. 7H/8``, columns ``W/4 .. 3W/4``, where a
    re-ID crop has its person. Luminance (which a DG-Net swap takes from the structure image)
    and most of the background are left out, so this is the clothing's colour.
    ``(N, 3, H, W)`` -> ``(N, 2)``."""
    r, g, b = x01.nan_to_num(0.0).clamp(0, 1).unbind(1)
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    h, w = r.shape[-2:]
    centre = (slice(None), slice(h // 8, h - h // 8), slice(w // 4, w - w // 4))
    return torch.stack([cb[centre].mean((1, 2)), cr[centre].mean((1, 2))], 1)


def chroma_distance(a01: torch.Tensor, b01: torch.Tensor) -> torch.Tensor:
    """Per pair, the Euclidean distance between the :func:`central_chroma` of ``a`` and ``b``
    (0 = the same mean clothing colour; the largest possible is about 0.71).
    ``(N, 3, H, W)`` x 2 -> ``(N,)``."""
    return (central_chroma(a01) - central_chroma(b01)).norm(dim=1)


@torch.no_grad()
def swap_measures(model, x: torch.Tensor, mean, std) -> dict[str, float]:
    """Swaps ``G(Es(x_i), Ea(x_{i-1}))``: the structure of image i, the appearance of the
    previous one. A working swap keeps the structure image's pose and silhouette (its grey
    SSIM to the structure image is higher than to the appearance image) and takes the
    appearance image's clothing colours. Two colour measures: the RGB histograms of the whole
    images (:func:`colour_histogram_distance`; dominated by luminance and background, which
    come from the structure image) and the mean chroma of the person region
    (:func:`chroma_distance`), with the fraction of swaps whose chroma is closer to the
    appearance image's than to the structure image's (0.5 = no colour transfer)."""
    app = x.roll(1, 0)
    gen = decode(model, structure_codes(model, x), appearance_codes(model, app))
    g01, s01, a01 = (denormalize(t, mean, std) for t in (gen, x, app))
    grey = [to_gray(t) for t in (g01, s01, a01)]
    to_app, to_str = chroma_distance(g01, a01), chroma_distance(g01, s01)
    return {
        "swap_grey_ssim_to_structure": ssim(grey[0], grey[1]).mean().item(),
        "swap_grey_ssim_to_appearance": ssim(grey[0], grey[2]).mean().item(),
        "swap_colour_distance_to_appearance": colour_histogram_distance(g01, a01).mean().item(),
        "swap_colour_distance_to_structure": colour_histogram_distance(g01, s01).mean().item(),
        "swap_chroma_distance_to_appearance": to_app.mean().item(),
        "swap_chroma_distance_to_structure": to_str.mean().item(),
        "swap_chroma_closer_to_appearance": (to_app < to_str).float().mean().item(),
    }
