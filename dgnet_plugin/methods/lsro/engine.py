"""LSRO's re-ID stage (Zheng et al., ICCV 2017, section 3.2): the IDE network trained on the
real images with their labels and the DCGAN's images with the uniform label."""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from ...engine import ENGINE_REGISTRY
from ...engine.optim import with_fast_impl
from ...offline_augmentation.engine import GeneratedReIDTrainer
from ...offline_augmentation.label_assignment import label_assignment_loss

#: The authors' per-parameter learning-rate multipliers (layumi/Person-reID_GAN
#: ``resnet52_market_gan.m``: odd parameters 0.001, even 0.02, ``conv1`` 0.0001; the repository's
#: own ``matlab/+dagnn/@DagNN/initParams.m`` gives the new fc751 before the loss 0.01 on its
#: filter and 0.2 on its bias), times the global rate ``SOLVER.REID.BASE_LR`` (0.1)
MATCONVNET_LR_MULT = {
    "conv1": 1e-4,
    "conv": 1e-3,
    "bn_weight": 0.02,
    "bn_bias": 1e-3,
    "fc_weight": 0.01,
    "fc_bias": 0.2,
}
#: the running-statistics averaging factor of the BN moments (their "learning rate", 0.02,
#: in MatConvNet's ``average`` update, ``examples/cnn_train_dag.m`` ``accumulateGradients``)
MATCONVNET_BN_MOMENTUM = 0.02


def matconvnet_param_groups(model: nn.Module, base_lr: float, weight_decay: float) -> list[dict]:
    """SGD parameter groups of the authors' MatConvNet recipe for an ``IDEBaseline``
    (``backbone`` + ``classifier``): each parameter's rate is ``base_lr`` x its multiplier
    of :data:`MATCONVNET_LR_MULT` (the backbone's first convolution, other convolutions,
    batch-norm scales and offsets, the classifier's weight and bias); weight decay
    ``weight_decay`` on convolutions and the classifier, none on batch norm
    (``resnet52_market_gan.m``: ``weightDecay = 0`` for the ``bn*`` parameters).

    Raises:
        ValueError: a trainable parameter the rules do not cover.
    """
    groups: dict[str, list] = {k: [] for k in MATCONVNET_LR_MULT}
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            groups["bn_weight"].append(module.weight)
            groups["bn_bias"].append(module.bias)
        elif isinstance(module, nn.Conv2d) and name.startswith("backbone"):
            groups["conv1" if name == "backbone.conv1" else "conv"].append(module.weight)
            if module.bias is not None:
                groups["conv"].append(module.bias)
        elif isinstance(module, nn.Linear) and name.startswith("classifier"):
            groups["fc_weight"].append(module.weight)
            groups["fc_bias"].append(module.bias)
        else:
            raise ValueError(f"LSRO.PARAM_GROUPS matconvnet has no rule for '{name}'")
    return [
        {
            "params": params,
            "lr": base_lr * MATCONVNET_LR_MULT[key],
            "weight_decay": 0.0 if key.startswith("bn") else weight_decay,
        }
        for key, params in groups.items()
        if params
    ]


def matconvnet_classifier_init(classifier: nn.Linear) -> None:
    """The new fc751 as the repository's ``initParams.m`` starts it: ``U(-a, a)`` with ``a =
    sqrt(3 / in_features)``, times 0.1 (the layer before the loss), zero bias."""
    a = 0.1 * math.sqrt(3.0 / classifier.in_features)
    nn.init.uniform_(classifier.weight, -a, a)
    if classifier.bias is not None:
        nn.init.zeros_(classifier.bias)


#: comparison runs of LSRO.COMPARE other than the baseline: label mode -> table row
COMPARISON_ROWS = {
    "argmax": "+ generated, argmax pseudo-labels",
    "lsr": "+ generated, LSR on the pseudo-label",
    "lsro": "+ generated, LSRO (uniform label)",
}


def comparison_dir(cfg, mode: str) -> str:
    """Where the comparison run of label mode ``mode`` lives: ``OUTPUT_DIR/reid_<mode>``."""
    return os.path.join(cfg.OUTPUT_DIR, f"reid_{mode}")


@ENGINE_REGISTRY.register()
class LSROEngine(GeneratedReIDTrainer):
    """:class:`~dgnet_plugin.offline_augmentation.engine.GeneratedReIDTrainer` with LSRO's labels:
    each step ``SOLVER.IMS_PER_BATCH`` real images (hard labels) and ``GENERATED.PER_BATCH``
    DCGAN images (``GENERATED.MIXING pool``, the authors' code: ``SOLVER.IMS_PER_BATCH``
    images from one shuffled pool of both), the DCGAN images labelled by
    ``LOSS.LABEL.GENERATED``:

    - ``lsro``: ``q(k) = 1/K`` (LSRO, Eq. 4: ``l = -(1 - Z) log p(y) - Z/K sum_k log p(k)``);
    - ``argmax``: the network's own prediction (the paper's "pseudo label" baseline);
    - ``lsr``: label smoothing (``LOSS.LABEL.EPSILON``) around that pseudo-label (the DCGAN
      images have no identity, so LSR needs one; CamStyle's choice for its labelled fakes).

    The final table adds the runs of ``LSRO.COMPARE`` (the real-only baseline, re-evaluated;
    the other label modes, from their own final evaluation in ``OUTPUT_DIR/reid_<mode>``).

    ``LSRO.PARAM_GROUPS matconvnet``: the authors' optimiser (:func:`matconvnet_param_groups`:
    SGD, ``SOLVER.REID.BASE_LR`` x per-parameter multipliers, no weight decay on batch norm),
    their classifier initialisation (:func:`matconvnet_classifier_init`) and batch-norm
    running-statistics momentum 0.02; ``staged``: the backbone at ``BASE_LR``, the classifier
    at ``HEADS_LR_FACTOR`` x. ``LSRO.PSEUDO_WEIGHT`` scales the ``argmax`` generated images'
    loss (the authors' ``Pseudo_Loss.m``: 0.1).
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.LSRO.PARAM_GROUPS == "matconvnet":  # the authors' start (class docstring)
            reid = self.model.reid
            matconvnet_classifier_init(reid.classifier.classifier)
            for m in reid.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.momentum = MATCONVNET_BN_MOMENTUM

    def build_optimizer(self) -> torch.optim.Optimizer:
        """``LSRO.PARAM_GROUPS matconvnet``: the authors' SGD over
        :func:`matconvnet_param_groups`; ``staged``: the core's optimiser."""
        if self.cfg.LSRO.PARAM_GROUPS != "matconvnet":
            return super().build_optimizer()
        s = self.cfg.SOLVER.REID
        groups = matconvnet_param_groups(self.model.reid, s.BASE_LR, s.WEIGHT_DECAY)
        opt = torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV)
        return with_fast_impl(opt, self.device)

    def label_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        mode = self.cfg.LOSS.LABEL.GENERATED
        if mode == "argmax" and self.cfg.LSRO.PSEUDO_WEIGHT != 1:
            return self.weighted_pseudo_label_loss(logits, batch)
        if mode != "lsr":
            return super().label_loss(logits, batch)
        gen = batch["generated"].bool()
        pids = torch.where(gen, logits.detach().argmax(1), batch["pid"])  # pseudo-labels
        lab = self.cfg.LOSS.LABEL
        return label_assignment_loss(logits, pids, gen, lab.REAL, "lsr", lab.EPSILON)

    def weighted_pseudo_label_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The pseudo-label comparison of the authors' ``matlab/+dagnn/Pseudo_Loss.m``: cross
        entropy on each image's label, the generated images' label being the network's own
        argmax, their terms weighted by ``LSRO.PSEUDO_WEIGHT``; the sum over the batch
        divided by its size."""
        gen = batch["generated"].bool()
        pids = torch.where(gen, logits.detach().argmax(1), batch["pid"])
        ce = torch.nn.functional.cross_entropy(logits.float(), pids, reduction="none")
        w = torch.where(gen, ce.new_tensor(self.cfg.LSRO.PSEUDO_WEIGHT), ce.new_tensor(1.0))
        return (w * ce).sum() / ce.shape[0]

    def row_name(self) -> str:
        if not self.with_generated:
            return "baseline (real images only)"
        return COMPARISON_ROWS[self.cfg.LOSS.LABEL.GENERATED]

    def extra_rows(self) -> dict:
        rows = super().extra_rows()
        if not self.with_generated:
            return rows
        for mode in self.cfg.LSRO.COMPARE:
            if mode in COMPARISON_ROWS and mode != self.cfg.LOSS.LABEL.GENERATED:
                found = self._recorded_results(comparison_dir(self.cfg, mode))
                if found:
                    rows[COMPARISON_ROWS[mode]] = found
        return rows
