"""Losses of DG-Net and the GAN re-ID family, one named function per equation.

Each function is registered in ``LOSS_REGISTRY`` under its own name.
"""

from .adversarial import lsgan_dis_loss, lsgan_gen_loss, real_gradient_penalty
from .build import LOSS_REGISTRY
from .distillation import soft_label_kl_loss, teacher_soft_label
from .identity import id_loss
from .reconstruction import recon_l1_loss
from .schedule import DGNET_LOSS_TERMS, dgnet_loss_weights, warmup_ramp

__all__ = [
    "LOSS_REGISTRY",
    "DGNET_LOSS_TERMS",
    "dgnet_loss_weights",
    "id_loss",
    "lsgan_dis_loss",
    "lsgan_gen_loss",
    "real_gradient_penalty",
    "recon_l1_loss",
    "soft_label_kl_loss",
    "teacher_soft_label",
    "warmup_ramp",
]
