"""Reconstruction losses (DG-Net Eq. 1, 2, 4, 5 and the cycle term)."""

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
