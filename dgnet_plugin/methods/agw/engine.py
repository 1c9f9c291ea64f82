"""AGW's training (mangye16/Cross-Modal-Re-ID-baseline ``train.py``): batches of P identities
x (K visible + K infrared), one forward of both streams, ``L = CE(logits) + WRT(f_pool)``
(identity loss after the BNNeck, weighted-regularisation triplet before it), SGD with the
backbone at ``SOLVER.REID.BASE_LR`` and the head at ``HEADS_LR_FACTOR`` x, a warm-up over
``SOLVER.WARMUP_ITERS`` (in ``SOLVER.WARMUP_STAGES`` constant stages, AGW's per-epoch steps, or
linear per iteration with 0) then x ``SOLVER.REID_GAMMA`` at each of ``SOLVER.STEPS``."""

from __future__ import annotations

import torch

from ...data.build import build_cross_modality_loader, load_cross_modality_train_set
from ...engine import ENGINE_REGISTRY, IterationTrainer
from ...engine.optim import build_reid_optimizer, build_warmup_scheduler


@ENGINE_REGISTRY.register()
class AGWEngine(IterationTrainer):
    """Trains :class:`~.meta_arch.AGW` (module docstring). One process."""

    REQUIRES = ("reid",)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.items, self.modalities, _ = load_cross_modality_train_set(cfg)

    def build_optimizers(self, cfg) -> dict:
        opt = build_reid_optimizer(cfg, self.model, ["head"], self.device)
        s = cfg.SOLVER
        sched = build_warmup_scheduler(
            opt, s.WARMUP_ITERS, s.STEPS, s.REID_GAMMA, stages=s.WARMUP_STAGES
        )
        return {"model": (opt, sched)}

    def build_train_loader(self, start: int):
        return build_cross_modality_loader(self.cfg, self.items, self.modalities, start)

    def train_step(self, b, iteration: int) -> dict:
        with self.autocast():
            out = self.model.forward_pair(b["img_v"], b["img_i"])
        pids = torch.cat([b["pid_v"], b["pid_i"]])
        return self.step_phase("model", self.model.losses(out, pids))
