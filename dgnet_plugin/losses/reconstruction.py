"""Reconstruction losses: DG-Net Eq. 1, 2, 4, 5; CycleGAN's cycle-consistency and
identity-mapping terms; PTGAN's foreground-masked identity term."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def recon_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error ``E|pred - target|`` over every element.

    DG-Net uses it for the self reconstruction ``L_img1 = E||x_a - G(s_a, a_a)||_1`` (Eq. 1),
    the same-identity reconstruction ``L_img2 = E||x_a - G(s_a, a_pos)||_1`` (Eq. 2), the
    appearance / structure code reconstructions ``L_code1 = E||a_a - Ea(G(s_b, a_a))||_1`` and
    ``L_code2 = E||s_b - Es(G(s_b, a_a))||_1`` (Eq. 4, 5) and the cycle term.
    Shapes must match; raises ``ValueError`` otherwise (silent broadcasting hides bugs).
    Under autocast ``F.l1_loss`` runs in float32 (a mean over millions of elements).
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"recon_l1_loss: shapes differ {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    return F.l1_loss(pred, target)


def cycle_consistency_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """CycleGAN's cycle term for one direction (Zhu et al. 2017, Eq. 2):
    ``L_cyc = E||F(G(x)) - x||_1`` with ``reconstructed = F(G(x))`` and ``real = x``, both
    ``(N, C, H, W)`` in the translator's range (``[-1, 1]``); the mean over every element.
    The method weights each direction (``LOSS.CYCLE``, lambda = 10)."""
    return recon_l1_loss(reconstructed, real)


def identity_mapping_loss(mapped: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The identity-mapping term (Taigman et al. 2017; CycleGAN section 5.2; SPGAN Eq. 3):
    ``L_ide = E||G(y) - y||_1`` for an image ``y`` already in G's target domain
    (``mapped = G(y)``, ``real = y``, ``(N, C, H, W)``): G should leave it unchanged, which
    keeps colours. Weighted by the method (``LOSS.IDENTITY``: CycleGAN 0.5 x 10, SPGAN 5)."""
    return recon_l1_loss(mapped, real)


def masked_identity_loss(
    translated: torch.Tensor, real: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """PTGAN's person-identity term for one direction (Wei et al. 2018, Eq. 4):
    ``L_ID = E||(G(a) - a) * M(a)||_2``: the translation must keep the foreground pixels.

    Args:
        translated: ``G(a)``, ``(N, C, H, W)``.
        real: ``a``, the same shape.
        mask: ``M(a)``, the foreground mask ``(N, 1, H, W)`` (or ``(N, C, H, W)``) in
            ``[0, 1]`` (1 = person); background pixels (0) contribute nothing, so no gradient
            reaches them.

    Returns the mean over images of the L2 norm of the masked difference divided by the
    square root of the number of elements per image (a root-mean-square over the image, so
    the weight does not depend on the image size): ``(1/N) sum_n ||d_n * M_n||_2 /
    sqrt(C H W)``. The per-image norm is taken with a small floor (1e-12) under the square
    root, so an all-background image has a zero, finite gradient.

    Raises:
        ValueError: shapes that do not match (the mask may have one channel).
    """
    if translated.shape != real.shape:
        raise ValueError(
            f"masked_identity_loss: shapes differ {tuple(translated.shape)} vs {tuple(real.shape)}"
        )
    if (
        mask.ndim != 4
        or mask.shape[0] != real.shape[0]
        or mask.shape[-2:] != real.shape[-2:]
        or (mask.shape[1] not in (1, real.shape[1]))
    ):
        raise ValueError(
            f"masked_identity_loss: mask {tuple(mask.shape)} must be (N, 1, H, W) or (N, C, H, W) "
            f"for images {tuple(real.shape)}"
        )
    d = (translated.float() - real.float()) * mask.float()
    per_image = d.pow(2).flatten(1).sum(1)
    return (per_image.clamp(min=1e-12).sqrt() / d[0].numel() ** 0.5).mean()


def foreground_weighted_l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, background_weight: float
) -> torch.Tensor:
    """L1 with the target's background down-weighted: per pixel ``w = b + (1 - b) * M``
    (``M`` the target's person mask in ``[0, 1]``, ``b`` = ``background_weight``) and

        ``L = sum_{n,c,h,w} w_{n,h,w} |pred - target|_{n,c,h,w} / (C * sum_{n,h,w} w_{n,h,w})``,

    the weighted mean of the absolute error. ``b = 1``: ``w = 1`` and ``L`` is the plain
    :func:`recon_l1_loss` (PN-GAN's L1 to the target, Qian et al. 2018, Eq. 3); ``b = 0``: the
    person alone, no gradient from background pixels. Not in the paper: PN-GAN's CPU demo
    (``PNGAN.BACKGROUND_WEIGHT``) uses it because on CUHK03 the corridor background is most
    of the L1 mass, which rewards drawing the average grey figure.

    Args:
        pred, target: ``(N, C, H, W)``, any range (the generator's ``[-1, 1]``).
        mask: ``(N, 1, H, W)`` in ``[0, 1]`` (1 = person).
        background_weight: ``b`` in ``[0, 1]``.

    Raises:
        ValueError: shapes that do not match, or ``b`` outside ``[0, 1]``.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"foreground_weighted_l1_loss: shapes differ {tuple(pred.shape)} vs "
            f"{tuple(target.shape)}"
        )
    if (
        mask.ndim != 4
        or mask.shape[1] != 1
        or mask.shape[0] != pred.shape[0]
        or (mask.shape[-2:] != pred.shape[-2:])
    ):
        raise ValueError(
            f"foreground_weighted_l1_loss: mask {tuple(mask.shape)} must be (N, 1, H, W) for "
            f"images {tuple(pred.shape)}"
        )
    if not 0.0 <= background_weight <= 1.0:
        raise ValueError(
            f"foreground_weighted_l1_loss: background_weight {background_weight} must be in [0, 1]"
        )
    w = background_weight + (1.0 - background_weight) * mask.float()
    err = (pred.float() - target.float()).abs() * w
    return err.sum() / (pred.shape[1] * w.sum()).clamp_min(1e-12)
