"""Primary feature learning: KL to the teacher's dynamic soft label (DG-Net Eq. 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def teacher_soft_label(teacher_logits: torch.Tensor, teacher_logits_flip: torch.Tensor):
    """``q = (softmax(T(x)) + softmax(T(flip(x)))) / 2``: the smoothed dynamic soft label.

    Inputs ``(N, K)`` logits of the image and of its horizontal flip; returns ``(N, K)``
    probabilities summing to 1 (no gradient is expected: call under ``torch.no_grad``).
    """
    return (teacher_logits.float().softmax(1) + teacher_logits_flip.float().softmax(1)) / 2


def soft_label_kl_loss(student_logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``L_prim = (1/N) sum_n KL(q_n || p_n)`` with ``p = softmax(student_logits)``.

    Equals ``KLDivLoss(reduction='sum')(log_softmax(logits), q) / N`` of the official code.
    """
    if student_logits.shape != q.shape:
        raise ValueError(
            f"soft_label_kl_loss: student logits {tuple(student_logits.shape)} and teacher "
            f"label {tuple(q.shape)} differ; the teacher must be trained on the same identities"
        )
    log_p = F.log_softmax(student_logits.float(), dim=1)
    return F.kl_div(log_p, q, reduction="sum") / student_logits.shape[0]
