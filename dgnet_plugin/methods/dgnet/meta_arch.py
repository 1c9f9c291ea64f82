"""DG-Net: joint discriminative and generative learning (Zheng et al., CVPR 2019).

Notation follows the paper: ``x_a, x_b`` real images of identities ``a, b``; ``f`` appearance
codes from ``Ea``; ``s`` structure codes from ``Es``; ``x_ba = G(s_b, f_a)`` has the
appearance of ``a`` and the structure of ``b``. Every loss term is computed for both
directions and summed, as in the official code; since both directions hold the same number
of images, the sum of the two per-direction means equals ``TWO_WAY`` times the mean over the
concatenated batch, which is how it is computed here (one network call instead of two).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ...losses import (
    id_loss,
    lsgan_dis_loss,
    lsgan_gen_loss,
    real_gradient_penalty,
    recon_l1_loss,
    soft_label_kl_loss,
    teacher_soft_label,
)
from ...modeling.blocks import to_gray
from ...modeling.discriminators import build_discriminator
from ...modeling.frozen import frozen_forward, teacher_forward
from ...modeling.generators import build_generator
from ...modeling.meta_arch import META_ARCH_REGISTRY
from . import generator as _generator  # noqa: F401 (registers AdaINGen)
from .appearance import build_appearance_encoder

TWO_WAY = 2.0
#: The official ``gen_update`` weights the generator's LSGAN term by 2 (on top of
#: ``LOSS.GAN``); kept so that ``LOSS.GAN 1.0`` means what it means in the official config.
LSGAN_GEN_FACTOR = 2.0
#: Terms computed at every iteration whatever their weight (0 during the warm-up for
#: ``id_fine``): they come from the shared forward at no extra network cost, and with them
#: every parameter of Ea, Es and G gets a gradient at every iteration (see
#: :meth:`DGNet.generator_losses`).
ALWAYS_COMPUTED = ("recon_x", "recon_xp", "id", "id_fine", "id_pos")


def _cat_outputs(outs: list[dict]) -> dict:
    """The ``return_all`` dicts of Ea on consecutive groups, concatenated along the batch."""
    return {
        "code": torch.cat([o["code"] for o in outs]),
        "logits": tuple(torch.cat(parts) for parts in zip(*(o["logits"] for o in outs))),
        "emb": tuple(torch.cat(parts) for parts in zip(*(o["emb"] for o in outs))),
    }


class GeneratorPhase(nn.Module):
    """What the G + Ea update trains, as one module for ``DistributedDataParallel``:
    ``reid`` (Ea) and ``gen`` (Es + G + AdaIN MLPs) of a :class:`DGNet` (the same module
    objects, not copies), with ``forward(a, b)`` = :meth:`DGNet.forward` (step 1 of the
    iteration). The later trainable calls of the step (Es on the generated images, the cycle
    decode, Ea on the generated images) run on the same modules outside this forward; their
    gradients meet in the same backward and DDP averages them with the rest."""

    def __init__(self, arch: DGNet):
        super().__init__()
        self.reid, self.gen = arch.reid, arch.gen
        self._arch = (arch,)  # not a submodule: D is not part of this phase

    def forward(self, a: dict, b: dict) -> dict:
        return self._arch[0](a, b)


@META_ARCH_REGISTRY.register()
class DGNet(nn.Module):
    """``reid`` (Ea, the re-ID model), ``gen`` (Es + G + AdaIN MLPs) and ``dis`` (D).

    A training batch of one stream is a dict with ``img`` and ``pos`` (another image of the
    same identity), ImageNet-normalised ``(N, 3, H, W)``; ``img_erased`` / ``pos_erased``
    (the randomly erased copies scored by the ID losses; optional) and ``pid`` ``(N,)``.
    """

    PROVIDES = ("reid", "gen", "dis")

    def __init__(
        self,
        reid: nn.Module,
        gen: nn.Module,
        dis: nn.Module,
        grad_penalty=0.01,
        ea_fused_forward=False,
        recon_f_grad=False,
    ):
        super().__init__()
        self.reid, self.gen, self.dis = reid, gen, dis
        self.grad_penalty = grad_penalty
        self.ea_fused_forward = ea_fused_forward
        self.recon_f_grad = recon_f_grad
        self.compiled = False

    @classmethod
    def from_config(cls, cfg, num_classes: int) -> DGNet:
        reid = build_appearance_encoder(cfg, num_classes)
        gen = build_generator(cfg, app_dim=reid.code_dim)
        dis = build_discriminator(cfg, 3)
        return cls(
            reid,
            gen,
            dis,
            cfg.MODEL.DIS.GRAD_PENALTY,
            ea_fused_forward=cfg.MODEL.EA_FUSED_FORWARD,
            recon_f_grad=cfg.LOSS.RECON_F_GRAD,
        )

    def compile_networks(self, **compile_kwargs) -> None:
        """``torch.compile`` the forward of Es, the decoder G and D, in place
        (``nn.Module.compile``): parameters, state_dict keys and checkpoints are unchanged.
        Ea, the AdaIN MLPs and the teacher stay eager. The real-image pass of D that feeds the
        gradient regulariser runs eagerly, since compiled graphs do not support the double
        backward it needs. ``compile_kwargs`` go to ``torch.compile`` (default
        ``dynamic=False``: each batch size gets its own static graph)."""
        compile_kwargs.setdefault("dynamic", False)
        for module in (self.gen.encoder, self.gen.decoder, self.dis):
            module.compile(**compile_kwargs)
        self.compiled = True

    def _eager(self):
        """Run compiled modules eagerly inside this context (no-op when nothing is compiled)."""
        if not self.compiled:
            return contextlib.nullcontext()
        return torch.compiler.set_stance("force_eager")

    def encode_appearance(self, groups: list[torch.Tensor], frozen: bool = False) -> dict:
        """Ea (``return_all``) on the image batches ``groups``, outputs concatenated in order.

        Default (``ea_fused_forward=False``, the official code): one Ea forward per group, so
        the batch-norm layers (the backbone's and the 512-d BatchNorm1d of the heads)
        normalise each group with its own batch statistics and update their running averages
        once per group, in order, as the official trainer's separate ``id_a`` calls do.
        ``ea_fused_forward=True``: one forward on the concatenation (faster; batch statistics
        over all groups together, and one running-average update for them).
        ``frozen``: through :func:`frozen_forward` (Ea', no parameter gradient, running
        statistics untouched; batch statistics still per group unless fused)."""
        call = (
            (lambda x: frozen_forward(self.reid, x, return_all=True))
            if frozen
            else (lambda x: self.reid(x, return_all=True))
        )
        if self.ea_fused_forward or len(groups) == 1:
            return call(torch.cat(groups))
        return _cat_outputs([call(x) for x in groups])

    # ------------------------------------------------------------------ step 1: generate
    def forward(self, a: dict, b: dict) -> dict:
        """Encode both streams with Ea and Es and decode every image the losses need.

        Returns a dict with the real images ``x_a, x_b``, labels ``l_a, l_b``, codes
        ``f_a, f_b`` (not detached; they are detached where they enter G) and ``s_a, s_b``,
        the ID logits of the real images, and the generated ``x_ba, x_ab`` (cross identity),
        ``x_aa, x_bb`` (self reconstruction) and ``x_a_pos, x_b_pos`` (reconstruction from
        the positive's appearance).
        """
        x_a, x_b, n = a["img"], b["img"], a["img"].shape[0]
        real = [x_a, x_b, a["pos"], b["pos"]]
        erased = [
            a.get("img_erased"),
            b.get("img_erased"),
            a.get("pos_erased"),
            b.get("pos_erased"),
        ]
        use_erased = all(e is not None for e in erased)
        r = self.encode_appearance(real + (erased if use_erased else []))
        f_a, f_b, f_pa, f_pb = r["code"][: 4 * n].split(n)
        scored = slice(4 * n, 8 * n) if use_erased else slice(0, 4 * n)
        logits_prim, logits_fine = (lg[scored] for lg in r["logits"])

        s_a, s_b = self.gen.encode(torch.cat([x_a, x_b])).split(n)
        s = torch.cat([s_b, s_a, s_a, s_b, s_a, s_b])
        f = torch.cat([f_a, f_b, f_a, f_b, f_pa, f_pb]).detach()  # f enters G detached
        x_ba, x_ab, x_aa, x_bb, x_a_pos, x_b_pos = self.gen.decode(s, f).split(n)
        return {
            "x_a": x_a,
            "x_b": x_b,
            "l_a": a["pid"],
            "l_b": b["pid"],
            "f_a": f_a,
            "f_b": f_b,
            "s_a": s_a,
            "s_b": s_b,
            "logits_prim_real": logits_prim[: 2 * n],  # erased x_a, x_b
            "logits_fine_real": logits_fine[: 2 * n],
            "logits_prim_pos": logits_prim[2 * n :],  # erased positives of a, b
            "x_ba": x_ba,
            "x_ab": x_ab,
            "x_aa": x_aa,
            "x_bb": x_bb,
            "x_a_pos": x_a_pos,
            "x_b_pos": x_b_pos,
        }

    def generator_phase(self) -> GeneratorPhase:
        """Ea, Es and G as one module whose forward is step 1 (for DDP; see
        :class:`GeneratorPhase`)."""
        return GeneratorPhase(self)

    # ------------------------------------------------------------------ step 2: D update
    def discriminator_losses(self, out: dict, dis: nn.Module | None = None) -> dict:
        """LSGAN loss of D on the detached cross-identity images ``x_ba, x_ab`` against the
        real ``x_a, x_b``, and the real-image gradient regulariser (computed in float32).
        ``dis``: what to call D through (its DDP wrapper with several processes; default
        ``self.dis``)."""
        dis = self.dis if dis is None else dis
        fake = torch.cat([out["x_ba"], out["x_ab"]]).detach()
        real = torch.cat([out["x_a"], out["x_b"]]).detach().float()
        fake_outs = dis(fake)
        # the regulariser needs fp32, and a double backward (so an eager D when compiled)
        eager = self._eager() if self.grad_penalty > 0 else contextlib.nullcontext()
        with torch.autocast(real.device.type, enabled=False), eager:
            real_outs = dis(real.requires_grad_(self.grad_penalty > 0))
            losses = {"dis_adv": TWO_WAY * lsgan_dis_loss(fake_outs, real_outs)}
            if self.grad_penalty > 0:
                reg = real_gradient_penalty(real_outs, real)
                losses["dis_reg"] = TWO_WAY * self.grad_penalty * reg
        return losses

    # ------------------------------------------------------------------ step 3: G + Ea update
    def generator_losses(
        self,
        out: dict,
        weights: dict[str, float],
        teacher=None,
        teacher_train_bn: bool = True,
        reencode: bool = True,
        teacher_dropout: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of the G + Ea update (names as in ``DGNET_LOSS_TERMS``).

        ``reencode``: whether the structure code of the generated images comes from the
        trainable Es (else a frozen Es on their grey version); the engine draws it with
        probability ``LOSS.STRUCTURE_ENCODER_AGAIN`` from ``SEED`` and the iteration (the same
        draw on every process and after a resume). ``teacher_dropout``: the teacher's dropout
        layers in training mode (``MODEL.TEACHER.DROPOUT_AFTER``).

        Terms whose weight is 0 (during the warm-up) are not computed, except
        :data:`ALWAYS_COMPUTED`: they come from the step-1 forward at no extra network cost
        and enter the total even with weight 0, so every parameter of Ea, Es and G gets a
        gradient (zero for a zero weight) at every iteration. That is what the official code
        does (its ID loss adds ``teacher_w * 0.2 * CE(fine)`` with ``teacher_w = 0`` before
        30k iterations, so the fine-grained head gets zero gradients, hence SGD's weight decay
        and momentum, during the warm-up), and what DDP without ``find_unused_parameters``
        needs. Gradient flow:
        generation terms reach G but not Ea (f detached; generated images scored by a frozen
        Ea and a frozen D; ``recon_f`` sends no gradient at all unless ``recon_f_grad``, as in
        the official code; ``recon_s``'s target, the real images' structure code, is
        detached); the ID terms reach Ea only; the teacher KL and the fine-grained
        term see detached generated images, so they reach Ea only.
        """
        n = out["x_a"].shape[0]
        real = torch.cat([out["x_a"], out["x_b"]])
        fake = torch.cat([out["x_ba"], out["x_ab"]])
        l_app = torch.cat([out["l_a"], out["l_b"]])  # identity of the appearance provider
        l_str = torch.cat([out["l_b"], out["l_a"]])  # identity of the structure provider
        on = {k: w > 0 or k in ALWAYS_COMPUTED for k, w in weights.items()}
        L: dict[str, torch.Tensor] = {}

        if on["gan"]:
            L["gan"] = TWO_WAY * LSGAN_GEN_FACTOR * lsgan_gen_loss(frozen_forward(self.dis, fake))
        if on["recon_x"]:
            L["recon_x"] = TWO_WAY * recon_l1_loss(torch.cat([out["x_aa"], out["x_bb"]]), real)
        if on["recon_xp"]:
            x_pos = torch.cat([out["x_a_pos"], out["x_b_pos"]])
            L["recon_xp"] = TWO_WAY * recon_l1_loss(x_pos, real)

        codes_on = on["recon_f"] or on["recon_s"] or on["cycle"]
        if on["recon_id"] or codes_on:
            # Ea' on x_ba, x_ab
            scored = self.encode_appearance([out["x_ba"], out["x_ab"]], frozen=True)
        if on["recon_id"]:
            L["recon_id"] = TWO_WAY * id_loss(scored["logits"][0], l_app)
        if codes_on:
            f_rec = scored["code"]  # [f_a from x_ba, f_b from x_ab]
            if not self.recon_f_grad:
                # official: Ea detaches its code, so Ea' 's code of x_ba is detached too and
                # L_code1 sends no gradient anywhere (NVlabs/DG-Net issues #40, #49, #59);
                # recon_f_grad=True is the paper's intent: it trains G, the MLPs and Es
                f_rec = f_rec.detach()
            L["recon_f"] = TWO_WAY * recon_l1_loss(
                f_rec, torch.cat([out["f_a"], out["f_b"]]).detach()
            )
            if reencode:
                s_rec = self.gen.encode(fake.detach())  # trainable Es, detached image
            else:
                s_rec = frozen_forward(self.gen.encoder, to_gray(fake))  # frozen Es
            # the target is detached, as in the official reconstruction criterion: recon_s
            # trains what produced s_rec, never the structure code of the real image
            s_target = torch.cat([out["s_b"], out["s_a"]]).detach()
            L["recon_s"] = TWO_WAY * recon_l1_loss(s_rec, s_target)
            if on["cycle"]:
                s_b_rec, s_a_rec = s_rec.split(n)
                x_cyc = self.gen.decode(torch.cat([s_a_rec, s_b_rec]), f_rec.detach())
                L["cycle"] = TWO_WAY * recon_l1_loss(x_cyc, real)  # [x_aba, x_bab]

        if on["id"]:
            L["id"] = TWO_WAY * id_loss(out["logits_prim_real"], l_app)
        if on["id_fine"]:
            L["id_fine"] = TWO_WAY * id_loss(out["logits_fine_real"], l_app)
        if on["id_pos"]:
            L["id_pos"] = TWO_WAY * id_loss(out["logits_prim_pos"], l_app)

        if on["teacher_kl"] or on["fine"]:
            fake_d = fake.detach()
            student = self.encode_appearance(list(fake_d.split(n)))["logits"]
            if on["teacher_kl"]:
                if teacher is None:
                    raise ValueError("the teacher weight is > 0 but no teacher was given")

                # one teacher call per direction (x_ba, then x_ab) and per flip, as the
                # official predict_label: with train_bn each call has its own batch statistics
                def t(x):
                    return torch.cat(
                        [
                            teacher_forward(teacher, g, teacher_train_bn, teacher_dropout)
                            for g in x.split(n)
                        ]
                    )

                q = teacher_soft_label(t(fake_d), t(fake_d.flip(3)))
                L["teacher_kl"] = TWO_WAY * soft_label_kl_loss(student[0], q)
            if on["fine"]:
                L["fine"] = TWO_WAY * id_loss(student[1], l_str)
        return L

    # ------------------------------------------------------------------ visualisation
    @torch.no_grad()
    def sample(self, x_a: torch.Tensor, x_b: torch.Tensor) -> list[torch.Tensor]:
        """Rows of a sample grid: ``[x_a, recon x_aa, cycle x_aba, swap G(s_a, f_b),
        x_b, recon x_bb, cycle x_bab, swap G(s_b, f_a)]``, each ``(N, 3, H, W)``."""
        n = x_a.shape[0]
        f_a, f_b = self.reid(torch.cat([x_a, x_b]), return_all=True)["code"].split(n)
        s_a, s_b = self.gen.encode(torch.cat([x_a, x_b])).split(n)
        x_aa, x_bb, x_ab, x_ba = self.gen.decode(
            torch.cat([s_a, s_b, s_a, s_b]), torch.cat([f_a, f_b, f_b, f_a])
        ).split(n)
        f_a_rec, f_b_rec = self.reid(torch.cat([x_ba, x_ab]), return_all=True)["code"].split(n)
        s_a_rec, s_b_rec = self.gen.encode(torch.cat([x_ab, x_ba])).split(n)
        x_aba, x_bab = self.gen.decode(
            torch.cat([s_a_rec, s_b_rec]), torch.cat([f_a_rec, f_b_rec])
        ).split(n)
        return [x_a, x_aa, x_aba, x_ab, x_b, x_bb, x_bab, x_ba]
