"""D2RL's training: both sub-networks, jointly and end to end (Wang et al., CVPR 2019,
section 3.4), with optional warm-up phases for each.

One iteration on a batch of P identities x (K visible ``x`` + K infrared ``y``):

1. discriminators (LSGAN): ``D_v`` real ``x`` vs ``G_v(z_i)``; ``D_i`` real ``y`` vs
   ``G_i(z_v)`` (translations detached), with ``z = E(.) + N(0, I)`` the sampled latents as
   UNIT's ``dis_update`` (``MODEL.D2RL.DIS_FAKES`` sampled; ``mean``: ``z = E(.)``);
2. translators + re-ID network, one backward of

   ``L = L_I + L_F`` with ``L_I = sum over the modalities of`` (UNIT, D2RL Eqs. 1-4)
   ``w_kl KL(E(x)) + w_x |x - G(E(x))|_1`` (VAE), ``w_gan LSGAN(D(fake))`` (GAN),
   ``w_cyc |x - G_v(E_i(G_i(E_v(x))))|_1 + w_kl_cyc KL(E_i(G_i(E_v(x))))`` (cycle), and
   ``L_F = w_id CE(T_F(u), pid) + w_tri triplet(T_F(u)_128, pid)`` on the unified images
   ``u = [x; G_i(z_v)]`` and ``[G_v(z_i); y]`` (D2RL Eq. 6), whose generated channels
   carry ``L_F``'s gradient back into the translators. ``z`` is the sampled latent of the
   generator step (``MODEL.D2RL.TF_TRANSLATION`` sampled) or the mean (``mean``).

Phases (``MODEL.D2RL``): the first ``WARMUP_GEN_ITER`` iterations train T_I alone (no
``L_F``), the next ``WARMUP_REID_ITER`` train T_F alone on unified images from the fixed
translators (their translations as ``TF_TRANSLATION`` says), then everything jointly.
"""

from __future__ import annotations

import torch

from ...data.build import build_cross_modality_loader, load_cross_modality_train_set
from ...engine import ENGINE_REGISTRY, IterationTrainer
from ...engine.optim import (
    build_adam,
    build_iter_scheduler,
    build_reid_optimizer,
    build_warmup_scheduler,
)
from ...utils.visualization import save_grid
from .meta_arch import IR, VIS, d2rl_loss_weights

#: the latents translations are decoded from (``MODEL.D2RL.DIS_FAKES`` / ``TF_TRANSLATION``)
TRANSLATION_LATENTS = ("sampled", "mean")


def translate_pair(gen, xg, yg, sampled: bool):
    """``(G_i(z_v), G_v(z_i))`` for visible ``xg`` ``(N, 3, H, W)`` and infrared ``yg`` ``(N, 1,
    H, W)`` in ``[-1, 1]``, with ``z = E(.) + N(0, I)`` when ``sampled`` (UNIT ``trainer.py``
    ``dis_update``: ``decode(h + n)``), else ``z = E(.)`` (the mean; UNIT's ``forward``)."""
    z_v, z_i = gen.encode(xg, VIS), gen.encode(yg, IR)
    if sampled:
        z_v, z_i = gen.sample(z_v), gen.sample(z_i)
    return gen.decode(z_v, IR), gen.decode(z_i, VIS)


def d2rl_phase(iteration: int, warmup_gen: int, warmup_reid: int) -> str:
    """``"gen"`` (T_I alone) for the first ``warmup_gen`` iterations, ``"reid"`` (T_F alone)
    for the next ``warmup_reid``, then ``"joint"``."""
    if iteration < warmup_gen:
        return "gen"
    if iteration < warmup_gen + warmup_reid:
        return "reid"
    return "joint"


def reid_lr_scheduler(optimizer, cfg):
    """T_F's per-iteration LR factor: a warm-up over ``SOLVER.WARMUP_ITERS`` from T_F's first
    iteration (``MODEL.D2RL.WARMUP_GEN_ITER``), linear or in ``SOLVER.WARMUP_STAGES`` constant
    stages (AGW's per-epoch steps), times ``SOLVER.REID_GAMMA`` at each iteration of
    ``SOLVER.REID_STEPS`` (``SOLVER.STEPS`` when empty)."""
    s = cfg.SOLVER
    steps = tuple(s.REID_STEPS) or tuple(s.STEPS)
    start = cfg.MODEL.D2RL.WARMUP_GEN_ITER
    return build_warmup_scheduler(
        optimizer, s.WARMUP_ITERS, steps, s.REID_GAMMA, start, s.WARMUP_STAGES
    )


@ENGINE_REGISTRY.register()
class D2RLEngine(IterationTrainer):
    """Trains :class:`~.meta_arch.D2RL` (module docstring). Update phases: ``dis`` (Adam,
    ``SOLVER.DIS``), ``gen`` (Adam, ``SOLVER.GEN``), ``reid`` (``SOLVER.REID``, SGD by
    default, the layers of ``MODEL.D2RL.HEADS`` at ``HEADS_LR_FACTOR`` x, a warm-up over
    ``SOLVER.WARMUP_ITERS`` from T_F's first iteration ``WARMUP_GEN_ITER``); x ``SOLVER.GAMMA``
    (translators, discriminators) at each iteration of ``SOLVER.STEPS``, x ``REID_GAMMA`` (T_F)
    at each of ``SOLVER.REID_STEPS`` (or ``STEPS``). One process (the cross-modality loader's
    limit)."""

    REQUIRES = ("gen", "dis", "reid")
    AMP_PHASES = ("dis", "gen")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.items, self.modalities, _ = load_cross_modality_train_set(cfg)
        self._vis_batch = None

    def build_optimizers(self, cfg) -> dict:
        m, dev, out = self.model, self.device, {}
        steps, g = cfg.SOLVER.STEPS, cfg.SOLVER.GAMMA
        for name, net in (("gen", m.gen), ("dis", torch.nn.ModuleList([m.dis_v, m.dis_i]))):
            opt = build_adam(net, getattr(cfg.SOLVER, name.upper()), dev)
            out[name] = (opt, build_iter_scheduler(opt, steps, g))
        opt = build_reid_optimizer(cfg, m.reid_net, list(cfg.MODEL.D2RL.HEADS), dev)
        out["reid"] = (opt, reid_lr_scheduler(opt, cfg))
        return out

    def build_train_loader(self, start: int):
        return build_cross_modality_loader(self.cfg, self.items, self.modalities, start)

    def train_step(self, b: dict, iteration: int) -> dict:
        """The whole iteration (discriminators, then translators + re-ID network, by the
        warm-up phase of ``iteration``) on the device batch ``b`` (``img_v, img_i, pid_v,
        pid_i``); returns the detached losses. The seam a torchreid engine calls."""
        cfg, m, opt, w = self.cfg, self.model, self.optimizers, self.cfg.LOSS
        weights = d2rl_loss_weights(w)
        if self._vis_batch is None:
            self._vis_batch = (b["img_v"][:4].clone(), b["img_i"][:4].clone())
        d = cfg.MODEL.D2RL
        phase = d2rl_phase(iteration, d.WARMUP_GEN_ITER, d.WARMUP_REID_ITER)
        x, y = b["img_v"], b["img_i"]
        xg, yg = m.to_gan(x), m.to_gan(y)
        log = {}
        # 1. discriminators
        tf_sampled = d.TF_TRANSLATION == "sampled"
        if phase != "reid":
            with torch.no_grad():
                y_fake, x_fake = translate_pair(m.gen, xg, yg, d.DIS_FAKES == "sampled")
            with self.autocast():
                d_terms = m.discriminator_losses(xg, yg, x_fake, y_fake)
            log.update(self.step_phase("dis", d_terms, weights))
        # 2. translators and re-ID network
        terms = {}
        with self.autocast():
            if phase == "reid":
                with torch.no_grad():
                    y_fake, x_fake = translate_pair(m.gen, xg, yg, tf_sampled)
            else:
                terms, img = m.translation_losses(xg, yg)
                y_fake, x_fake = img["y_fake"], img["x_fake"]
                if phase == "joint" and not tf_sampled:
                    y_fake, x_fake = m.gen.decode(img["mu_v"], IR), m.gen.decode(img["mu_i"], VIS)
            if phase != "gen":
                if not d.REID_GRAD_TO_GEN:
                    y_fake, x_fake = y_fake.detach(), x_fake.detach()
                u = torch.cat([m.unified(x, m.from_gan(y_fake)), m.unified(y, m.from_gan(x_fake))])
                pids = torch.cat([b["pid_v"], b["pid_i"]])
                terms.update(m.reid_losses(u, pids, w.TRIPLET_MARGIN))
        stepped = [opt["gen"]] if phase != "reid" else []
        stepped += [opt["reid"]] if phase != "gen" else []
        # the discriminators get gradients from the GAN term: zeroed before their next step
        opt["gen" if phase == "reid" else "reid"].zero_grad(set_to_none=True)
        log.update(self.step_phase("gen", terms, weights, stepped, total="total"))
        return log

    def visualize(self, iteration: int) -> None:
        """A grid of 6 rows: visible x, its translation to infrared, its cycle back; infrared
        y, its translation to visible, its cycle back (infrared rows shown in grey), written
        to ``OUTPUT_DIR/images/translate_XXXXXXXX.jpg`` and TensorBoard ``translate``."""
        if self._vis_batch is None:
            return
        x, y = self._vis_batch
        rows = translation_rows(self.model, x, y)
        self.save_samples("translate", rows, iteration, mean=(0.0,) * 3, std=(1.0,) * 3)


def translation_rows(model, x: torch.Tensor | None, y: torch.Tensor | None) -> list[torch.Tensor]:
    """``[x, x->IR, x->IR->vis, y, y->vis, y->vis->IR]`` in ``[0, 1]``, every row 3-channel
    (infrared repeated), for loader-normalised visible ``x`` / infrared ``y`` batches (either
    may be ``None``)."""
    rows = []

    def to01(t):
        t = (model.to_gan(t) + 1) / 2
        return t.clamp(0, 1).expand(-1, 3, -1, -1) if t.shape[1] == 1 else t.clamp(0, 1)

    for real in (x, y):
        if real is None or len(real) == 0:
            continue
        fake = model.translate(real)
        rows += [to01(real), to01(fake), to01(model.translate(fake))]
    return rows


def save_translation_grid(rows: list[torch.Tensor], path: str) -> torch.Tensor:
    """Write ``rows`` (each ``(N, 3, H, W)`` in ``[0, 1]``) as one grid; returns it."""
    return save_grid(rows, path, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
