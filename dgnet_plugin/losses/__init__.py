"""Losses shared by the methods, one named function per equation (the paper's equation is
in each docstring): identity (classification), reconstruction, adversarial, distillation.
A method's weighting and schedule of these terms live in its package."""

from .adversarial import lsgan_dis_loss, lsgan_gen_loss, real_gradient_penalty
from .distillation import soft_label_kl_loss, teacher_soft_label
from .identity import id_loss
from .reconstruction import recon_l1_loss

__all__ = [
    "id_loss",
    "lsgan_dis_loss",
    "lsgan_gen_loss",
    "real_gradient_penalty",
    "recon_l1_loss",
    "soft_label_kl_loss",
    "teacher_soft_label",
]
