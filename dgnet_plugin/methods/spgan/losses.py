"""SPGAN's similarity-preserving term (Deng et al., CVPR 2018, Eq. 4-5), in the released form
(``Simon4Yan/Learning-via-Translation``, ``SPGAN/train_spgan_demo.py``) and the paper's."""

from __future__ import annotations

import torch

from ...losses import contrastive_loss

NEGATIVES = ("released", "paper")


def spgan_metric_loss(
    e_a: torch.Tensor,
    e_fake_b: torch.Tensor,
    e_b: torch.Tensor,
    e_fake_a: torch.Tensor,
    margin: float = 2.0,
    negatives: str = "released",
) -> torch.Tensor:
    """The contrastive term ``m_loss`` on unit SiaNet embeddings ``(N, D)`` of ``x_S`` (``a``),
    ``G(x_S)`` (``fake_b``), ``x_T`` (``b``) and ``F(x_T)`` (``fake_a``); a scalar (mean over
    the ``N`` samples).

    ``negatives="released"`` (``SPGAN/train_spgan_demo.py``, ``m_loss``): ``pos_S = ||e(x_S) -
    e(G(x_S))||^2``, ``pos_T = ||e(x_T) - e(F(x_T))||^2``, ``neg = max(0, m - d(e(x_S),
    e(x_T)))^2`` between the two *real* images (``d = sqrt(||.||^2 + 1e-6)`` as released), and
    ``m_loss = (pos_S + pos_T + 2 neg) / 3``: the negative trains SiaNet only, the
    generators get no gradient from it.

    ``negatives="paper"`` (section 3.2, Eq. 4-5): positives ``(x_S, G(x_S))``, ``(x_T,
    F(x_T))``, negatives ``(G(x_S), x_T)``, ``(F(x_T), x_S)``, each in Hadsell's halved form
    (:func:`~dgnet_plugin.losses.contrastive_loss`), averaged over the four groups.

    Raises:
        ValueError: another ``negatives``.
    """
    if negatives == "released":
        pos_s = (e_a.float() - e_fake_b.float()).pow(2).sum(1)
        pos_t = (e_b.float() - e_fake_a.float()).pow(2).sum(1)
        d = ((e_a.float() - e_b.float()).pow(2).sum(1) + 1e-6).sqrt()
        neg = (margin - d).clamp(min=0).pow(2)
        return ((pos_s + pos_t + 2 * neg) / 3).mean()
    if negatives != "paper":
        raise ValueError(f"SPGAN.NEGATIVES '{negatives}': choose one of {', '.join(NEGATIVES)}")
    n = e_a.shape[0]
    one, zero = e_a.new_ones(n), e_a.new_zeros(n)
    return (
        contrastive_loss(e_a, e_fake_b, one, margin)
        + contrastive_loss(e_b, e_fake_a, one, margin)
        + contrastive_loss(e_fake_b, e_b, zero, margin)
        + contrastive_loss(e_fake_a, e_a, zero, margin)
    ) / 4


def spgan_contrastive_loss(
    e_a: torch.Tensor,
    e_fake_b: torch.Tensor,
    e_b: torch.Tensor,
    e_fake_a: torch.Tensor,
    margin: float = 2.0,
) -> torch.Tensor:
    """The paper's form of :func:`spgan_metric_loss` (``SPGAN.NEGATIVES paper``)."""
    return spgan_metric_loss(e_a, e_fake_b, e_b, e_fake_a, margin, "paper")
