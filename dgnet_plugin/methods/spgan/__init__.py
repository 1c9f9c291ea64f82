"""SPGAN (Deng, Zheng, Ye, Kang, Yang, Jiao, "Image-Image Domain Adaptation with Preserved
Self-Similarity and Domain-Dissimilarity for Person Re-identification", CVPR 2018): CycleGAN
with identity mapping and a Siamese contrastive term translates the labelled source domain
to the target's style; IDE is trained on the translated images with the source labels and
evaluated on the target ("learning via translation").

``config``, ``meta_arch`` (``SPGAN``: CycleGAN + ``SiameseNet``), ``losses``
(``spgan_metric_loss``, ``spgan_contrastive_loss``), ``engine`` (``SPGANTranslatorEngine``,
``SPGANEngine``),
``pipeline`` (its stages; ``translation_stages`` is the cross-domain pipeline).
"""

from ...config import Method, register_method
from ...config.validate import one_of
from ...offline_augmentation.config import CYCLEGAN_RULES, GENERATED_REID_RULES
from .config import add_spgan_config
from .engine import SPGANEngine, SPGANTranslatorEngine
from .losses import NEGATIVES, spgan_contrastive_loss, spgan_metric_loss
from .meta_arch import SPGAN, SiameseNet
from .pipeline import spgan_stages

METHOD = register_method(
    Method(
        name="spgan",
        title="SPGAN",
        add_config=add_spgan_config,
        engines=("SPGANEngine", "SPGANTranslatorEngine"),
        meta_architectures=("SPGAN",),
        config_rules=CYCLEGAN_RULES
        + GENERATED_REID_RULES
        + (one_of("SPGAN.NEGATIVES", NEGATIVES),),
        stages=spgan_stages,
    )
)

__all__ = [
    "METHOD",
    "SPGAN",
    "SPGANEngine",
    "SPGANTranslatorEngine",
    "SiameseNet",
    "add_spgan_config",
    "spgan_contrastive_loss",
    "spgan_metric_loss",
]
