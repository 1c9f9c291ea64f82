"""Metric-learning losses on embeddings: batch-hard triplet (Hermans et al. 2017) and the
Siamese contrastive loss (Hadsell et al. 2006)."""

from __future__ import annotations

import torch

from ..utils import torchreid_compat as tr


def triplet_loss(features: torch.Tensor, pids: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017, Eq. 5), torchreid's ``TripletLoss``:

    ``L = (1/N) sum_a max(0, m + max_{p: y_p = y_a} d(a, p) - min_{n: y_n != y_a} d(a, n))``

    with ``d`` the Euclidean distance between rows of ``features`` ``(N, D)`` and ``pids``
    ``(N,)``. Every anchor needs a negative in the batch (P x K batches:
    :class:`~dgnet_plugin.data.samplers.IdentityBatchSampler`). Computed in float32.
    """
    return tr.losses.TripletLoss(margin=margin)(features.float(), pids)


def _softmax_weights(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax of ``values`` over the entries where ``mask`` is 1 (0 elsewhere)."""
    shifted = values - (values * mask).max(dim=1, keepdim=True).values
    e = shifted.exp() * mask
    return e / (e.sum(dim=1, keepdim=True) + 1e-6)


def weighted_regularized_triplet_loss(features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
    """AGW's weighted regularisation triplet (Ye et al., "Deep Learning for Person
    Re-identification: A Survey and Outlook", TPAMI 2021, Eq. 10), no margin:

    ``L = (1/N) sum_a log(1 + exp(sum_p w_ap d_ap - sum_n w_an d_an))`` with
    ``w_ap = softmax_p(d_ap)`` over the anchor's positives and ``w_an = softmax_n(-d_an)``
    over its negatives; ``d`` the Euclidean distance between rows of ``features`` ``(N,
    D)``. Every anchor needs a positive and a negative in the batch (P x K batches).
    Computed in float32.
    """
    f = features.float()
    d = torch.cdist(f, f).clamp_min(1e-12)
    same = (pids[:, None] == pids[None, :]).float()
    diff = 1.0 - same
    w_ap = _softmax_weights(d * same, same)
    w_an = _softmax_weights(-d * diff, diff)
    furthest_pos = (d * same * w_ap).sum(1)
    closest_neg = (d * diff * w_an).sum(1)
    return torch.nn.functional.softplus(furthest_pos - closest_neg).mean()


def contrastive_loss(
    x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Siamese contrastive loss (Hadsell, Chopra & LeCun 2006, Eq. 4) over ``N`` pairs:

    ``L = (1/N) sum_n [ y_n d_n^2 / 2 + (1 - y_n) max(0, m - d_n)^2 / 2 ]``

    with ``d_n = ||x1_n - x2_n||_2`` (rows of ``(N, D)`` embeddings), ``y_n = same[n]`` 1 for a
    pair of one identity and 0 otherwise (Hadsell's ``Y`` is ``1 - y``), ``m = margin``.
    Computed in float32.
    """
    d2 = (x1.float() - x2.float()).pow(2).sum(1)
    d = d2.clamp(min=1e-12).sqrt()
    y = same.float()
    return (0.5 * (y * d2 + (1 - y) * (margin - d).clamp(min=0).pow(2))).mean()
