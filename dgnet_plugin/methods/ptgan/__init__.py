"""PTGAN (Wei, Zhang, Gao, Tian, "Person Transfer GAN to Bridge Domain Gap for Person
Re-Identification", CVPR 2018): a CycleGAN whose identity term is restricted to the person's
foreground mask transfers labelled source images to the target domain's background and
lighting; IDE is trained on them with the source labels and evaluated on the target.

Masks come from a provider (:mod:`dgnet_plugin.offline_augmentation.masks`: a folder of masks, e.g.
``../shared/data/cuhk03_pose_mask/cuhk03_masks/``, or a segmentation model cached on disk).
``config``, ``engine`` (``PTGANTranslatorEngine``, ``PTGANEngine``); the stages are the shared
cross-domain pipeline (:func:`~dgnet_plugin.offline_augmentation.engine.cross_domain_stages`).
"""

from ...config import Method, register_method
from ...config.validate import one_of
from ...offline_augmentation.config import CYCLEGAN_RULES, GENERATED_REID_RULES
from ...offline_augmentation.engine import cross_domain_stages
from .config import add_ptgan_config
from .engine import PTGANEngine, PTGANTranslatorEngine


def ptgan_stages(cfg) -> list:
    return cross_domain_stages(cfg, "PTGANTranslatorEngine", "CycleGAN", "PTGAN source->target")


METHOD = register_method(
    Method(
        name="ptgan",
        title="PTGAN",
        add_config=add_ptgan_config,
        engines=("PTGANEngine", "PTGANTranslatorEngine"),
        config_rules=CYCLEGAN_RULES
        + GENERATED_REID_RULES
        + (one_of("PTGAN.ID_NORM", ("paper", "rms")),),
        stages=ptgan_stages,
    )
)

__all__ = ["METHOD", "PTGANEngine", "PTGANTranslatorEngine", "add_ptgan_config"]
