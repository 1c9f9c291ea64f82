"""SPGAN's networks: CycleGAN plus SiaNet, the Siamese network of the contrastive term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...modeling.generators.resnet import init_translator_weights
from ...modeling.meta_arch import META_ARCH_REGISTRY
from ...offline_augmentation.cyclegan_model import CycleGAN


class SiameseNet(nn.Module):
    """SiaNet (SPGAN section 3.2; ``SPGAN/models/models_spgan.py``, ``metric_net``):
    ``blocks`` x (4x4 stride-2 conv, LeakyReLU 0.2, 2x2 max-pool), widths ``dim * 2**i``,
    then FC 128 -> LeakyReLU 0.2 -> dropout -> FC 64, L2-normalised. ``(N, C, H, W)`` images
    in ``[-1, 1]`` -> ``(N, 64)`` unit embeddings. Four blocks bring 256x256 to 1x1 (the
    release flattens that 1x1 map); what is left of a smaller image is average-pooled
    (max-pools round up, so 64x32 with 2 blocks is 4x2). Weights: ``init`` ``normal``
    N(0, 0.02) or ``xavier`` (TF-slim's default, the release's), zero biases."""

    def __init__(
        self,
        in_ch: int = 3,
        dim: int = 64,
        blocks: int = 4,
        dropout: float = 0.5,
        init: str = "normal",
    ):
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_ch
        for i in range(blocks):
            out = dim * 2**i
            layers += [
                nn.Conv2d(ch, out, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            ch = out
        self.features = nn.Sequential(*layers)
        # metric_net: fc1 -> LeakyReLU 0.2 -> dropout -> fc2
        self.fc = nn.Sequential(
            nn.Linear(ch, 128), nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(128, 64)
        )
        init_translator_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean((2, 3))
        return F.normalize(self.fc(f), dim=1)


@META_ARCH_REGISTRY.register()
class SPGAN(CycleGAN):
    """:class:`~dgnet_plugin.modeling.meta_arch.CycleGAN` + ``siamese`` (:class:`SiameseNet`),
    trained by its own optimiser on the contrastive term (``SPGAN/train_spgan_demo.py``:
    ``metric_train_op``), not by the generators' (:meth:`generators` leaves it out)."""

    def __init__(self, gen_ab, gen_ba, dis_a, dis_b, siamese: nn.Module):
        super().__init__(gen_ab, gen_ba, dis_a, dis_b)
        self.siamese = siamese

    @classmethod
    def from_config(cls, cfg, num_classes: int = 0):
        base = CycleGAN.from_config(cfg, num_classes)
        s = cfg.SPGAN
        sia = SiameseNet(
            cfg.MODEL.GEN.OUT_CHANNELS,
            s.SIAMESE_DIM,
            s.SIAMESE_BLOCKS,
            s.DROPOUT,
            init=cfg.MODEL.DIS.get("INIT", "normal"),
        )
        return cls(base.gen_ab, base.gen_ba, base.dis_a, base.dis_b, sia)
