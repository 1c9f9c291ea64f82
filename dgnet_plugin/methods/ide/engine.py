"""The IDE engine: plain softmax (cross-entropy) re-ID training, e.g. of DG-Net's teacher."""

from __future__ import annotations

from ...engine import ENGINE_REGISTRY, IterationTrainer
from ...engine.optim import build_iter_scheduler, build_reid_optimizer
from ...utils.registry import register_renamed


@ENGINE_REGISTRY.register()
class IDEEngine(IterationTrainer):
    """Cross-entropy training of a plain re-ID model (``MODEL.META_ARCHITECTURE
    IDEBaseline``): ``SOLVER.REID.OPTIM`` (SGD by default), backbone at
    ``SOLVER.REID.BASE_LR``, head at ``HEADS_LR_FACTOR`` x, per-iteration MultiStepLR. The
    IDE baseline of the re-ID literature, and the teacher DG-Net distils from (paper section
    3.2; "teacher" is a role, this is the softmax trainer).

    With several processes the network is trained through ``DistributedDataParallel`` (one
    forward and one backward per step: DDP's reducer averages the gradients during the
    backward); ``model`` stays the plain network (checkpoints, evaluation)."""

    REQUIRES = ("reid",)

    def __init__(self, cfg):
        super().__init__(cfg)
        self._train_net = self.model

    def build_optimizers(self, cfg) -> dict:
        opt = build_reid_optimizer(cfg, self.model, ["classifier"], self.device)
        return {"model": (opt, build_iter_scheduler(opt, cfg.SOLVER.STEPS, cfg.SOLVER.REID_GAMMA))}

    def prepare_distributed(self) -> None:
        if self._train_net is self.model:
            self._train_net = self.ddp(self.model, broadcast_buffers=True)

    def train_step(self, batch, iteration: int):
        with self.autocast():
            logits = self._train_net(batch["img"])  # through the DDP wrapper
        return self.step_phase("model", self.model.losses(logits, batch))


#: The name of this engine before the method-package move (configs and saved config.yaml
#: files with ``ENGINE.NAME TeacherEngine`` keep working, with a warning).
register_renamed(ENGINE_REGISTRY, "TeacherEngine", "IDEEngine")
