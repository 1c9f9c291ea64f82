"""LSRO's re-ID stage (Zheng et al., ICCV 2017, section 3.2): the IDE network trained on the
real images with their labels and the DCGAN's images with the uniform label."""

from __future__ import annotations

import os

import torch

from ...engine import ENGINE_REGISTRY
from ...engine.offline import GeneratedReIDTrainer
from ...losses import label_assignment_loss

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
    """:class:`~dgnet_plugin.engine.offline.GeneratedReIDTrainer` with LSRO's labels: each
    step ``DATALOADER.IMS_PER_BATCH`` real images (hard labels) and ``GENERATED.PER_BATCH``
    DCGAN images, labelled by ``LOSS.LABEL.GENERATED``:

    - ``lsro``: ``q(k) = 1/K`` (LSRO, Eq. 4: ``l = -(1 - Z) log p(y) - Z/K sum_k log p(k)``);
    - ``argmax``: the network's own prediction (the paper's "pseudo label" baseline);
    - ``lsr``: label smoothing (``LOSS.LABEL.EPSILON``) around that pseudo-label (the DCGAN
      images have no identity, so LSR needs one; CamStyle's choice for its labelled fakes).

    The final table adds the runs of ``LSRO.COMPARE`` (the real-only baseline, re-evaluated;
    the other label modes, from their own final evaluation in ``OUTPUT_DIR/reid_<mode>``).
    """

    def label_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        if self.cfg.LOSS.LABEL.GENERATED != "lsr":
            return super().label_loss(logits, batch)
        gen = batch["generated"].bool()
        pids = torch.where(gen, logits.detach().argmax(1), batch["pid"])  # pseudo-labels
        lab = self.cfg.LOSS.LABEL
        return label_assignment_loss(logits, pids, gen, lab.REAL, "lsr", lab.EPSILON)

    def row_name(self) -> str:
        if not self.generated_per_batch:
            return "baseline (real images only)"
        return COMPARISON_ROWS[self.cfg.LOSS.LABEL.GENERATED]

    def extra_rows(self) -> dict:
        rows = super().extra_rows()
        if not self.generated_per_batch:
            return rows
        for mode in self.cfg.LSRO.COMPARE:
            if mode in COMPARISON_ROWS and mode != self.cfg.LOSS.LABEL.GENERATED:
                found = self._recorded_results(comparison_dir(self.cfg, mode))
                if found:
                    rows[COMPARISON_ROWS[mode]] = found
        return rows
