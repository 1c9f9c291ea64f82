"""Identity (classification) losses: DG-Net Eq. 3 (real images) and Eq. 6 (generated)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def id_loss(logits: torch.Tensor, pids: torch.Tensor, label_smooth: float = 0.0) -> torch.Tensor:
    """Cross-entropy ``-E log p(y | x)`` of ``(N, K)`` logits against ``(N,)`` train pids.

    ``L_id^s`` on (randomly erased) real images, ``L_id^c`` on generated images scored by the
    frozen Ea, and the fine-grained mining term with the structure provider's pid.
    The classifier size is checked against the data when the model is built, not here
    (a check here would synchronise the device every step).
    """
    return F.cross_entropy(logits.float(), pids, label_smoothing=label_smooth)
