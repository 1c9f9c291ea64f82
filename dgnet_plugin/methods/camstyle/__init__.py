"""CamStyle (Zhong, Zheng, Zheng, Li, Yang, "Camera Style Adaptation for Person
Re-identification", CVPR 2018): one CycleGAN per camera pair, every training image transferred
to every other camera, IDE trained on real + transferred images with label smoothing (LSR,
epsilon 0.1) on the transferred ones.

``config`` (``add_camstyle_config``), ``engine`` (``CamStyleCycleGANEngine`` for a pair,
``CamStyleEngine`` for re-ID), ``pipeline`` (the stages ``tools/train_net.py`` runs).
"""

from ...config import Method, register_method
from ...offline_augmentation.config import CYCLEGAN_RULES, GENERATED_REID_RULES
from .config import add_camstyle_config
from .engine import CamStyleCycleGANEngine, CamStyleEngine
from .pipeline import camstyle_stages

METHOD = register_method(
    Method(
        name="camstyle",
        title="CamStyle",
        add_config=add_camstyle_config,
        engines=("CamStyleEngine", "CamStyleCycleGANEngine"),
        config_rules=CYCLEGAN_RULES + GENERATED_REID_RULES,
        stages=camstyle_stages,
    )
)

__all__ = ["METHOD", "CamStyleCycleGANEngine", "CamStyleEngine", "add_camstyle_config"]
