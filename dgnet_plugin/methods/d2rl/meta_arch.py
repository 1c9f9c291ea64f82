"""D2RL (Wang et al., "Learning to Reduce Dual-level Discrepancy for Infrared-Visible Person
Re-identification", CVPR 2019): the image-level sub-network T_I (a UNIT translator between
visible and infrared, with one multi-scale LSGAN discriminator per modality) cascaded with
the feature-level sub-network T_F (a re-ID network on 4-channel [RGB; IR] images).

Value ranges: the data loaders give ImageNet-normalised visible ``(N, 3, H, W)`` and
infrared ``(N, 1, H, W)`` normalised with the mean of the ImageNet statistics
(:func:`~dgnet_plugin.data.transforms.channel_stats`); the translator and the
discriminators work in ``[-1, 1]`` (:meth:`D2RL.to_gan` / :meth:`D2RL.from_gan` convert);
T_F sees the unified image ``[RGB; IR]`` with each half in the loaders' normalisation.
"""

from __future__ import annotations

import torch
from torch import nn

from ...data.transforms import channel_stats
from ...losses import (
    id_loss,
    lsgan_dis_loss,
    lsgan_gen_loss,
    recon_l1_loss,
    triplet_loss,
    vae_kl_loss,
)
from ...modeling.backbones import build_backbone
from ...modeling.blocks import renormalize
from ...modeling.discriminators import build_discriminator
from ...modeling.generators import build_generator
from ...modeling.heads import global_pool
from ...modeling.meta_arch import META_ARCH_REGISTRY

VIS, IR = "a", "b"  # the translator's domains


NECKS = ("paper", "bnneck")
#: T_F's layers after the backbone (``MODEL.D2RL.HEADS`` picks those trained at
#: ``SOLVER.REID.HEADS_LR_FACTOR`` x; ``bottleneck`` exists with the bnneck only)
HEAD_LAYERS = ("fc", "embed", "bottleneck", "classifier")


def feature_choices(neck: str) -> tuple[str, ...]:
    """The ``MODEL.D2RL.TEST_FEATURE`` values T_F with ``neck`` has: fc, embed, and bn (the
    batch-normalised embedding) with the bnneck."""
    return ("fc", "embed") + (("bn",) if neck == "bnneck" else ())


class D2RLReID(nn.Module):
    """T_F: backbone with a 4-channel first convolution (the IR filter initialised with the
    mean of the RGB filters, :func:`~dgnet_plugin.modeling.backbones.build.adapt_first_conv`),
    global average pooling, FC-1024 (+ BN + ReLU, ours), then FC-128 (the triplet embedding)
    and one of two necks (``MODEL.D2RL.NECK``):

    - ``"paper"`` (D2RL section 3.3): FC-N_p (the identity logits) on the FC-1024 output;
    - ``"bnneck"`` [ours, after AGW / BoT's BNNeck]: a batch norm (bias frozen at 0) on the
      FC-128 embedding, then a bias-free FC-N_p; the triplet loss keeps the embedding before
      the batch norm, the cross-entropy reads the normalised one (no ReLU in between).

    ``forward(u)``: ``u`` ``(N, 4, H, W)`` -> ``{fc (N, 1024), embed (N, 128), logits (N,
    N_p)}``, with ``bn`` ``(N, 128)`` (the normalised embedding) for ``"bnneck"``.

    Raises:
        ValueError: another ``neck``.
    """

    def __init__(self, backbone, num_classes: int, fc_dim=1024, embed_dim=128, neck="paper"):
        super().__init__()
        if neck not in NECKS:
            raise ValueError(f"MODEL.D2RL.NECK '{neck}': one of {', '.join(NECKS)}")
        self.backbone = backbone
        self.neck = neck
        self.fc = nn.Sequential(
            nn.Linear(backbone.out_channels, fc_dim), nn.BatchNorm1d(fc_dim), nn.ReLU()
        )
        self.embed = nn.Linear(fc_dim, embed_dim)
        for m in (self.fc[0], self.embed):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            nn.init.zeros_(m.bias)
        if neck == "paper":
            self.classifier = nn.Linear(fc_dim, max(num_classes, 1))
            nn.init.zeros_(self.classifier.bias)
        else:
            self.bottleneck = nn.BatchNorm1d(embed_dim)
            self.bottleneck.bias.requires_grad_(False)
            self.classifier = nn.Linear(embed_dim, max(num_classes, 1), bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def feature_dim(self, name: str) -> int:
        """Width of the output ``name`` (fc | embed | bn)."""
        return self.fc[0].out_features if name == "fc" else self.embed.out_features

    def forward(self, u: torch.Tensor) -> dict:
        h = self.fc(global_pool(self.backbone(u), "avg"))
        e = self.embed(h)
        if self.neck == "paper":
            return {"fc": h, "embed": e, "logits": self.classifier(h)}
        bn = self.bottleneck(e)
        return {"fc": h, "embed": e, "bn": bn, "logits": self.classifier(bn)}


def unit_translation_losses(gen, dis_v, dis_i, xg, yg) -> tuple[dict, dict]:
    """The image-level losses of one batch (UNIT's generator update) on ``xg`` visible
    ``(N, 3, H, W)`` and ``yg`` infrared ``(N, 1, H, W)`` in ``[-1, 1]``, unweighted (the
    engine weights them by :func:`d2rl_loss_weights`).

    Returns ``(terms, images)``: the unweighted terms by name, and the translations
    ``y_fake = G_i(z_v)``, ``x_fake = G_v(z_i)`` (from the sampled latents, with gradient),
    the cycles ``x_cyc``, ``y_cyc`` and the latent means ``mu_v``, ``mu_i``. Source: UNIT
    ``trainer.py`` ``UNIT_Trainer.gen_update`` (``vgg_w`` 0).
    """
    mu_v, mu_i = gen.encode(xg, VIS), gen.encode(yg, IR)
    z_v, z_i = gen.sample(mu_v), gen.sample(mu_i)
    x_rec, y_rec = gen.decode(z_v, VIS), gen.decode(z_i, IR)
    y_fake, x_fake = gen.decode(z_v, IR), gen.decode(z_i, VIS)
    mu_vi, mu_iv = gen.encode(y_fake, IR), gen.encode(x_fake, VIS)
    x_cyc, y_cyc = gen.decode(gen.sample(mu_vi), VIS), gen.decode(gen.sample(mu_iv), IR)
    terms = {
        "kl": vae_kl_loss(mu_v) + vae_kl_loss(mu_i),
        "recon_x": recon_l1_loss(x_rec, xg) + recon_l1_loss(y_rec, yg),
        "gan": lsgan_gen_loss(dis_v(x_fake)) + lsgan_gen_loss(dis_i(y_fake)),
        "cyc_x": recon_l1_loss(x_cyc, xg) + recon_l1_loss(y_cyc, yg),
        "cyc_kl": vae_kl_loss(mu_vi) + vae_kl_loss(mu_iv),
    }
    images = {"y_fake": y_fake, "x_fake": x_fake, "x_cyc": x_cyc, "y_cyc": y_cyc}
    return terms, {**images, "mu_v": mu_v, "mu_i": mu_i}


def reid_losses(reid_net, u: torch.Tensor, pids: torch.Tensor, margin: float) -> dict:
    """T_F's unweighted losses on unified images ``u`` ``(N, 4, H, W)``: identity
    cross-entropy on the FC-N_p logits and the batch-hard triplet loss (``margin``) on the
    FC-128 embedding."""
    out = reid_net(u)
    return {
        "id": id_loss(out["logits"], pids),
        "triplet": triplet_loss(out["embed"], pids, margin),
    }


def d2rl_loss_weights(w) -> dict:
    """The weight of each term by name, from ``LOSS`` (UNIT's ``gan_w``, ``recon_x_w``,
    ``recon_kl_w``, ``recon_x_cyc_w``, ``recon_kl_cyc_w``; T_F's ``ID_W`` / ``TRIPLET_W``)."""
    return {
        "dis_adv": w.GAN_W,
        "gan": w.GAN_W,
        "kl": w.RECON_KL_W,
        "recon_x": w.RECON_X_W,
        "cyc_x": w.RECON_X_CYC_W,
        "cyc_kl": w.RECON_KL_CYC_W,
        "id": w.ID_W,
        "triplet": w.TRIPLET_W,
    }


@META_ARCH_REGISTRY.register()
class D2RL(nn.Module):
    """``gen`` (UNIT translator, a = visible 3 channels, b = infrared 1 channel), ``dis_v`` /
    ``dis_i`` (multi-scale LSGAN discriminators on visible / infrared images in ``[-1, 1]``),
    ``reid_net`` (:class:`D2RLReID`).

    ``reid`` is the model itself: in eval mode ``forward(x)`` unifies a one-modality batch
    (visible ``(N, 3, H, W)`` or infrared ``(N, 1, H, W)``, told apart by the channel count)
    into ``[RGB; IR]`` with the translator (:meth:`unify`) and returns the test feature
    (``MODEL.D2RL.TEST_FEATURE``). A 4-channel batch is taken as already unified.
    """

    PROVIDES = ("gen", "dis", "reid")

    def __init__(self, gen, dis_v, dis_i, reid_net, stats, test_feature: str = "fc"):
        super().__init__()
        allowed = feature_choices(reid_net.neck)
        if test_feature not in allowed:
            raise ValueError(
                f"MODEL.D2RL.TEST_FEATURE '{test_feature}' with MODEL.D2RL.NECK "
                f"'{reid_net.neck}': one of {' | '.join(allowed)} (bn needs the bnneck)"
            )
        self.gen, self.dis_v, self.dis_i, self.reid_net = gen, dis_v, dis_i, reid_net
        self.stats = stats  # {3: (mean, std), 1: (mean, std)} of the loaders
        self.test_feature = test_feature
        self.feature_parts = (reid_net.feature_dim(test_feature),)

    @property
    def dis(self) -> nn.ModuleList:
        return nn.ModuleList([self.dis_v, self.dis_i])

    @property
    def reid(self) -> nn.Module:
        return self

    @classmethod
    def from_config(cls, cfg, num_classes: int) -> D2RL:
        gen = build_generator(cfg, in_ch_a=3, in_ch_b=1)
        dis_v = build_discriminator(cfg, in_channels=3)
        dis_i = build_discriminator(cfg, in_channels=1)
        d = cfg.MODEL.D2RL
        if cfg.MODEL.BACKBONE.IN_CHANNELS != 4:
            from ...config import ConfigError

            raise ConfigError(
                f"MODEL.BACKBONE.IN_CHANNELS={cfg.MODEL.BACKBONE.IN_CHANNELS}: D2RL's re-ID "
                "network reads the 4-channel [RGB; IR] image; set it to 4"
            )
        reid = D2RLReID(build_backbone(cfg), num_classes, d.FC_DIM, d.EMBEDDING_DIM, d.NECK)
        stats = {
            c: (
                channel_stats(cfg.INPUT.PIXEL_MEAN, c, "INPUT.PIXEL_MEAN"),
                channel_stats(cfg.INPUT.PIXEL_STD, c, "INPUT.PIXEL_STD"),
            )
            for c in (1, 3)
        }
        return cls(gen, dis_v, dis_i, reid, stats, d.TEST_FEATURE)

    # ---------------------------------------------------------------- value ranges
    def to_gan(self, x: torch.Tensor) -> torch.Tensor:
        """Loader-normalised ``(N, C, H, W)`` (C = 3 or 1) -> ``[-1, 1]``."""
        mean, std = self.stats[x.shape[1]]
        return renormalize(x, mean, std, 0.5, 0.5)

    def from_gan(self, x: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` ``(N, C, H, W)`` -> the loaders' normalisation."""
        mean, std = self.stats[x.shape[1]]
        return renormalize(x, 0.5, 0.5, mean, std)

    # ---------------------------------------------------------------- T_I then T_F
    def translate(self, x: torch.Tensor) -> torch.Tensor:
        """The other modality of a loader-normalised batch, from the latent mean: visible
        ``(N, 3, H, W)`` -> infrared ``(N, 1, H, W)`` (``G_i(E_v(x))``) and back
        (``G_v(E_i(y))``); loader-normalised."""
        src, dst = (VIS, IR) if x.shape[1] == 3 else (IR, VIS)
        return self.from_gan(self.gen(self.to_gan(x), src, dst))

    @staticmethod
    def unified(x: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        """D2RL's multi-spectral image ``[RGB; IR]`` ``(N, 4, H, W)`` of a real batch and its
        translation (a visible image keeps its RGB and gets a generated IR channel; an
        infrared image keeps its IR channel and gets a generated RGB)."""
        return torch.cat([x, translated] if x.shape[1] == 3 else [translated, x], dim=1)

    def unify(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3 | 1 | 4, H, W)`` -> ``(N, 4, H, W)`` (a 4-channel batch is returned as is).

        Raises:
            ValueError: another channel count.
        """
        if x.shape[1] == 4:
            return x
        if x.shape[1] not in (1, 3):
            raise ValueError(
                f"D2RL reads 3-channel visible or 1-channel infrared images, got {x.shape[1]}"
            )
        return self.unified(x, self.translate(x))

    # ---------------------------------------------------------------- loss terms (unweighted)
    def discriminator_losses(self, xg, yg, x_fake, y_fake) -> dict[str, torch.Tensor]:
        """``dis_adv``: the LSGAN terms of both discriminators, real ``xg`` / ``yg`` against
        the (detached) translations ``x_fake`` / ``y_fake``, all in ``[-1, 1]``."""
        return {
            "dis_adv": lsgan_dis_loss(self.dis_v(x_fake), self.dis_v(xg))
            + lsgan_dis_loss(self.dis_i(y_fake), self.dis_i(yg))
        }

    def translation_losses(self, xg, yg) -> tuple[dict, dict]:
        """T_I's terms and images (:func:`unit_translation_losses`)."""
        return unit_translation_losses(self.gen, self.dis_v, self.dis_i, xg, yg)

    def reid_losses(self, u, pids, margin: float) -> dict:
        """T_F's terms on unified images (:func:`reid_losses`)."""
        return reid_losses(self.reid_net, u, pids, margin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.reid_net(self.unify(x))
        return out[self.test_feature] if not self.training else out["logits"]
