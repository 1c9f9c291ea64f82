"""SPGAN's similarity-preserving term (Deng et al., CVPR 2018, Eq. 4-5)."""

from __future__ import annotations

import torch

from ...losses import contrastive_loss


def spgan_contrastive_loss(
    e_a: torch.Tensor,
    e_fake_b: torch.Tensor,
    e_b: torch.Tensor,
    e_fake_a: torch.Tensor,
    margin: float = 2.0,
) -> torch.Tensor:
    """The contrastive loss on SiaNet embeddings ``(N, D)`` of the paper's pairs: positives
    ``(x_S, G(x_S))`` and ``(x_T, F(x_T))`` (a translated image keeps its identity: self-
    similarity), negatives ``(G(x_S), x_T)`` and ``(F(x_T), x_S)`` (a translated image is not
    a target person: domain-dissimilarity); the mean over the four groups of
    :func:`~dgnet_plugin.losses.contrastive_loss` (``y d^2 / 2 + (1 - y) max(0, m - d)^2 / 2``)
    with margin ``m`` (2 in SPGAN)."""
    n = e_a.shape[0]
    one, zero = e_a.new_ones(n), e_a.new_zeros(n)
    return (
        contrastive_loss(e_a, e_fake_b, one, margin)
        + contrastive_loss(e_b, e_fake_a, one, margin)
        + contrastive_loss(e_fake_b, e_b, zero, margin)
        + contrastive_loss(e_fake_a, e_a, zero, margin)
    ) / 4
