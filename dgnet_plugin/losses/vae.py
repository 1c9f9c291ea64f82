"""The VAE prior term of UNIT's shared latent space (Liu, Breuel & Kautz 2017)."""

from __future__ import annotations

import torch


def vae_kl_loss(mu: torch.Tensor) -> torch.Tensor:
    """KL term of UNIT's reduced VAE: ``L_KL = mean(mu^2)`` over every element of ``mu``.

    UNIT's encoder gives ``q(z | x) = N(mu(x), I)`` (unit variance, ``z = mu + eps``,
    ``eps ~ N(0, I)``), so ``KL(q || N(0, I)) = (1/2) sum_i mu_i^2``; UNIT's code (and MUNIT's
    ``__compute_kl``) drops the 1/2 and averages over the elements, which the method's weight
    (``gan_w`` / ``recon_kl_w``) absorbs. Computed in float32.
    """
    return mu.float().pow(2).mean()
