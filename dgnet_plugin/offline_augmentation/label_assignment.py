"""One label-assignment loss for re-ID on real + generated images: each sample gets a target
distribution ``q_n`` over the ``K`` training identities, chosen by whether it is generated,
and the loss is the cross-entropy ``-(1/N) sum_n sum_k q_n(k) log p_n(k)``, ``p_n =
softmax(logits_n)``.

Modes (``q_n`` for a sample of label ``y``):

- ``hard``: one-hot, ``q(y) = 1`` (IDE; SPGAN / PTGAN / PN-GAN on their generated images);
- ``lsr``: label smoothing regularisation (Szegedy et al. 2016), ``q(y) = 1 - eps + eps/K``,
  ``q(k != y) = eps/K`` (CamStyle, Zhong et al. 2018, Eq. 5 with eps = 0.1, on the
  camera-style transferred images);
- ``lsro``: the uniform label ``q(k) = 1/K`` (Zheng et al. 2017, Eq. 4: LSRO for unlabelled
  GAN images; the label is not used);
- ``argmax``: a pseudo-label, one-hot at ``argmax_k`` of the network's own (detached)
  prediction (LSRO's "pseudo label" baseline; the label is not used);
- ``teacher``: a teacher's soft label ``q_n`` given per sample (DG-Net's primary feature,
  Eq. 8, up to the teacher entropy, a constant).

So LSRO's loss ``l = -(1 - Z) log p(y) - (Z/K) sum_k log p(k)`` (Z = 1 for a generated image)
is ``label_assignment_loss(logits, y, generated, real="hard", generated_mode="lsro")``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LABEL_MODES = ("hard", "lsr", "lsro", "argmax", "teacher")


def label_targets(
    mode: str,
    logits: torch.Tensor,
    pids: torch.Tensor | None = None,
    epsilon: float = 0.1,
    teacher_probs: torch.Tensor | None = None,
) -> torch.Tensor:
    """The ``(N, K)`` target distributions ``q`` of ``mode`` (see the module doc) for
    ``(N, K)`` ``logits`` and ``(N,)`` integer ``pids`` (labels ``0..K-1``; unused by
    ``lsro`` / ``argmax`` / ``teacher``). Rows sum to 1; no gradient flows through ``q``.

    Raises:
        ValueError: an unknown mode, a missing ``pids`` / ``teacher_probs``, a label outside
            ``0..K-1``, ``epsilon`` outside [0, 1], or a teacher of another shape.
    """
    n, k = logits.shape
    if mode not in LABEL_MODES:
        raise ValueError(f"label mode '{mode}' is unknown; choose one of {', '.join(LABEL_MODES)}")
    if mode == "lsro":
        return logits.new_full((n, k), 1.0 / k, dtype=torch.float32)
    if mode == "argmax":
        return F.one_hot(logits.detach().argmax(1), k).float()
    if mode == "teacher":
        if teacher_probs is None or teacher_probs.shape != (n, k):
            got = None if teacher_probs is None else tuple(teacher_probs.shape)
            raise ValueError(
                f"label mode 'teacher' needs teacher_probs of shape {(n, k)}, got {got}"
            )
        return teacher_probs.detach().float()
    if pids is None:
        raise ValueError(f"label mode '{mode}' needs the labels (pids)")
    if n and (int(pids.min()) < 0 or int(pids.max()) >= k):
        raise ValueError(
            f"label mode '{mode}': labels must lie in 0..{k - 1}, got {pids.min()}..{pids.max()} "
            "(an unlabelled generated image needs 'lsro' or 'argmax')"
        )
    one_hot = F.one_hot(pids.long(), k).float()
    if mode == "hard":
        return one_hot
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"LSR epsilon must lie in [0, 1], got {epsilon}")
    return one_hot * (1.0 - epsilon) + epsilon / k


def label_assignment_loss(
    logits: torch.Tensor,
    pids: torch.Tensor,
    generated: torch.Tensor,
    real: str = "hard",
    generated_mode: str = "lsr",
    epsilon: float = 0.1,
    teacher_probs: torch.Tensor | None = None,
) -> torch.Tensor:
    """``-(1/N) sum_n sum_k q_n(k) log p_n(k)``: real samples (``generated[n]`` False) take
    the targets of ``real``, generated ones those of ``generated_mode``
    (:func:`label_targets`).

    Args:
        logits: ``(N, K)`` classifier outputs (any float dtype; computed in float32).
        pids: ``(N,)`` labels ``0..K-1``; entries of samples whose mode ignores them (LSRO's
            unlabelled images) may hold anything, e.g. -1.
        generated: ``(N,)`` bool (or 0/1) flag per sample, the sample dict's ``generated``.
        epsilon: LSR's epsilon (CamStyle: 0.1).
        teacher_probs: ``(N, K)`` soft labels for the ``teacher`` mode.
    """
    gen = generated.bool().to(logits.device)
    log_p = F.log_softmax(logits.float(), dim=1)
    q = torch.empty_like(log_p)
    for mask, mode in ((~gen, real), (gen, generated_mode)):
        if bool(mask.any()):
            q[mask] = label_targets(
                mode,
                logits[mask],
                pids[mask] if pids is not None else None,
                epsilon,
                teacher_probs[mask] if teacher_probs is not None else None,
            )
    return -(q * log_p).sum(1).mean()
