"""Adversarial losses: LSGAN (Mao et al. 2017), the original (vanilla, BCE) GAN (Goodfellow
et al. 2014) and the real-image gradient regulariser (DG-Net Eq. 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lsgan_gen_loss(fake_outs: list[torch.Tensor]) -> torch.Tensor:
    """Generator side of LSGAN (Mao et al. 2017, Eq. 2 with targets b = c = 1), summed over
    discriminator scales: ``sum_s E[(D_s(G(.)) - 1)^2]``.

    ``fake_outs``: list of patch maps ``(N, 1, h_s, w_s)``, any float dtype (the loss is
    computed in float32). A method's own weighting (DG-Net's factor 2) is applied by the
    method, not here.
    """
    return sum(((o.float() - 1.0) ** 2).mean() for o in fake_outs)


def lsgan_dis_loss(fake_outs: list[torch.Tensor], real_outs: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator side of LSGAN: ``sum_s E[D_s(fake)^2] + E[(D_s(real) - 1)^2]``, in float32
    whatever the dtype of the patch maps (squares of fp16 scores overflow above 256)."""
    return sum(
        (f.float() ** 2).mean() + ((r.float() - 1.0) ** 2).mean()
        for f, r in zip(fake_outs, real_outs)
    )


def real_gradient_penalty(real_outs: list[torch.Tensor], x_real: torch.Tensor) -> torch.Tensor:
    """R1-style regulariser ``sum_s E_n ||d(sum D_s(x_real)) / d x_real_n||^2``.

    ``x_real`` must require grad and be the tensor the outputs were computed from. The graph is
    kept (``create_graph=True``) so the penalty trains D. Computed in float32: under fp16 the
    squared gradients overflowed in the official apex code. Multiply by ``MODEL.DIS.GRAD_PENALTY``.
    """
    n = x_real.shape[0]
    total = x_real.new_zeros((), dtype=torch.float32)
    for out in real_outs:
        (grad,) = torch.autograd.grad(out.float().sum(), x_real, create_graph=True)
        total = total + grad.float().pow(2).reshape(n, -1).sum(1).mean()
    return total


def _maps(outs) -> list[torch.Tensor]:
    return [outs] if isinstance(outs, torch.Tensor) else list(outs)


def vanilla_gan_gen_loss(fake_outs) -> torch.Tensor:
    """Generator side of the original GAN (Goodfellow et al. 2014), non-saturating form used by
    CycleGAN's ``GANLoss('vanilla')`` and pix2pix: with logits ``d = D_s(G(.))``,
    ``sum_s E[-log sigmoid(d)] = sum_s E[BCE(d, 1)] = sum_s E[softplus(-d)]``.

    ``fake_outs``: a logit map or a list of them (one per discriminator scale), any shape and
    float dtype; computed in float32.
    """
    return sum(F.softplus(-o.float()).mean() for o in _maps(fake_outs))


def vanilla_gan_dis_loss(fake_outs, real_outs) -> torch.Tensor:
    """Discriminator side of the original GAN:
    ``sum_s E[-log(1 - sigmoid(D_s(fake)))] + E[-log sigmoid(D_s(real))]
    = sum_s E[softplus(D_s(fake))] + E[softplus(-D_s(real))]`` (BCE against 0 and 1), in
    float32. Inputs as in :func:`vanilla_gan_gen_loss`."""
    return sum(
        F.softplus(f.float()).mean() + F.softplus(-r.float()).mean()
        for f, r in zip(_maps(fake_outs), _maps(real_outs), strict=True)
    )
