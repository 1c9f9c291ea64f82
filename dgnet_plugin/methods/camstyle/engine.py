"""CamStyle's two engines: one CycleGAN per camera pair, and IDE on real + camera-style
transferred images with LSR labels."""

from __future__ import annotations

from ...config import ConfigError
from ...engine import ENGINE_REGISTRY
from ...offline_augmentation.cyclegan import CycleGANTrainer
from ...offline_augmentation.engine import GeneratedReIDTrainer


@ENGINE_REGISTRY.register()
class CamStyleEngine(GeneratedReIDTrainer):
    """Re-ID on the real training images (hard labels) and their transfers to every other
    camera (LSR, epsilon ``LOSS.LABEL.EPSILON`` = 0.1; Zhong et al. section 3.3, Eq. 5), with
    ``GENERATED.PER_BATCH`` transferred images per step (official 46 beside 128 real)."""


@ENGINE_REGISTRY.register()
class CamStyleCycleGANEngine(CycleGANTrainer):
    """The CycleGAN of one camera pair (``CAMSTYLE.PAIR`` = (i, j), 1-based): domain A = the
    training images of camera i, domain B = those of camera j. Labels are not used."""

    def domain_items(self):
        i, j = (int(c) for c in self.cfg.CAMSTYLE.PAIR)
        if i == j:
            raise ConfigError(f"CAMSTYLE.PAIR {tuple(self.cfg.CAMSTYLE.PAIR)}: two cameras")
        a = [it for it in self.train_items if it[2] == i - 1]
        b = [it for it in self.train_items if it[2] == j - 1]
        if not a or not b:
            cams = sorted({it[2] + 1 for it in self.train_items})
            raise ConfigError(
                f"CAMSTYLE.PAIR ({i}, {j}): the training set has cameras {cams}; name two of them"
            )
        return a, b
