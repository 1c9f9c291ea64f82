"""Losses shared by the methods, one named function per equation (the paper's equation is
in each docstring): identity (classification), metric (triplet, contrastive), reconstruction,
adversarial (LSGAN, vanilla), distillation, the VAE prior; plus CycleGAN's :class:`ImagePool`
of generated images shown to the discriminator. A method's weighting and schedule of these
terms live in its package."""

from .adversarial import (
    lsgan_dis_loss,
    lsgan_gen_loss,
    real_gradient_penalty,
    vanilla_gan_dis_loss,
    vanilla_gan_gen_loss,
)
from .distillation import soft_label_kl_loss, teacher_soft_label
from .identity import id_loss
from .image_pool import ImagePool
from .metric import contrastive_loss, triplet_loss, weighted_regularized_triplet_loss
from .reconstruction import (
    cycle_consistency_loss,
    foreground_weighted_l1_loss,
    identity_mapping_loss,
    masked_identity_loss,
    recon_l1_loss,
)
from .vae import vae_kl_loss

__all__ = [
    "ImagePool",
    "contrastive_loss",
    "cycle_consistency_loss",
    "id_loss",
    "identity_mapping_loss",
    "lsgan_dis_loss",
    "lsgan_gen_loss",
    "foreground_weighted_l1_loss",
    "masked_identity_loss",
    "real_gradient_penalty",
    "recon_l1_loss",
    "soft_label_kl_loss",
    "teacher_soft_label",
    "triplet_loss",
    "vae_kl_loss",
    "vanilla_gan_dis_loss",
    "vanilla_gan_gen_loss",
    "weighted_regularized_triplet_loss",
]
