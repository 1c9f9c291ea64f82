"""PN-GAN (Qian, Fu, Xiang, Wang, Qiu, Wu, Jiang, Xue, ECCV 2018, "Pose-Normalized Image
Generation for Person Re-identification"): a pose-conditioned generator draws each person in
8 canonical poses; re-ID learns from real + pose-normalised images and fuses the features of
the pose-normalised views at test time."""

from ...config import Method, register_method
from ...config.validate import Rule, non_negative, one_of, positive, probability
from ...data.pose import POSE_FORMATS
from ...offline_augmentation.config import CYCLEGAN_RULES, GENERATED_REID_RULES
from .config import add_pngan_config
from .engine import FEATURE_ROWS, PNGANEngine
from .gan import PNGANGeneratorEngine, PoseGAN
from .stages import pngan_stages

RULES = (
    CYCLEGAN_RULES
    + GENERATED_REID_RULES
    + (
        Rule(
            "POSE.SOURCE",
            lambda v, cfg: bool(v),
            "a keypoint CSV or a TorchScript pose model (e.g. cuhk03_pose_mask/cuhk03_poses.csv)",
        ),
        positive("POSE.NUM_CANONICAL"),
        positive("POSE.SIGMA", integer=False),
        positive("POSE.LIMB_SIGMA", integer=False),
        non_negative("PNGAN.NUM_SOURCES", note=" (0 = every training image)"),
        non_negative("PNGAN.FUSION_TEST_IDS", note=" (0 = every test identity)"),
        probability("PNGAN.SELF_PAIRS"),
        Rule(
            "PNGAN.SELF_PAIRS_FINAL",
            lambda v, cfg: v < 0 or v <= 1,
            "a fraction in [0, 1], or < 0 for SELF_PAIRS throughout",
        ),
        probability("PNGAN.BACKGROUND_WEIGHT"),
        non_negative("PNGAN.EPOCHS", note=" (0 = GAN.MAX_ITER iterations)"),
        positive("PNGAN.DECAY_EPOCH"),
        non_negative("PNGAN.ITERS_PER_EPOCH"),
        one_of("PNGAN.DIS_REAL", ("source", "target")),
        one_of("PNGAN.PAIR_SAMPLING", ("permutations", "uniform")),
        one_of("POSE.FORMAT", POSE_FORMATS),
        one_of("MODEL.GEN.RES_PAD", ("zeros", "reflect")),
        one_of("MODEL.GEN.INIT", ("default", "normal")),
        positive("PNGAN.DIS_LOSS_WEIGHT", integer=False),
        Rule(
            "MASKS.FOLDER",
            lambda v, cfg: cfg.PNGAN.BACKGROUND_WEIGHT >= 1 or bool(v or cfg.MASKS.MODEL),
            "a folder of person masks (e.g. ../shared/data/cuhk03_pose_mask/cuhk03_masks) or "
            "MASKS.MODEL when PNGAN.BACKGROUND_WEIGHT < 1",
        ),
        one_of("LOSS.LABEL.GENERATED", ("hard", "lsr")),
        Rule(
            "PNGAN.TEST_FEATURES",
            lambda v, cfg: all(n in FEATURE_ROWS for n in v),
            "a tuple of " + " | ".join(FEATURE_ROWS),
        ),
    )
)

METHOD = register_method(
    Method(
        name="pngan",
        title="PN-GAN",
        add_config=add_pngan_config,
        engines=("PNGANEngine", "PNGANGeneratorEngine"),
        meta_architectures=("IDEBaseline", "PoseGAN"),
        stages=pngan_stages,
        config_rules=RULES,
    )
)

__all__ = ["METHOD", "PNGANEngine", "PNGANGeneratorEngine", "PoseGAN", "add_pngan_config"]
