"""Config fragments of the offline generate-then-train pipeline (CamStyle, SPGAN, PTGAN,
LSRO, PN-GAN), shared by their method packages: each method's ``add_<name>_config`` calls
:func:`add_cyclegan_config` and/or :func:`add_generated_reid_config` (the cross-domain ones,
SPGAN and PTGAN, :func:`add_translate_then_train_config`) and then sets its own values.
Defaults are CycleGAN's (Zhu et al. 2017; ``junyanz/pytorch-CycleGAN-and-pix2pix`` as forked
by CamStyle) and CamStyle's re-ID recipe.

The stage that trains the translator runs the method's config with the ``GAN`` node turned
into ``SOLVER.MAX_ITER``, ``DATALOADER.IMS_PER_BATCH``, ``INPUT.SIZE_TRAIN`` ... of its own
run (:func:`gan_stage_opts`), so one config file describes every stage; ``SOLVER.GEN`` and
``SOLVER.DIS`` are the translator's Adam, ``SOLVER.REID`` / ``SOLVER.MAX_ITER`` the re-ID
stage's.
"""

from __future__ import annotations

from .config import CfgNode as CN
from .config import merge_missing
from .validate import non_negative, one_of, positive, positive_size, probability

_G = CN()
_G.MODEL = CN()
_G.MODEL.GEN = CN()
_G.MODEL.GEN.NAME = "ResnetGenerator"
_G.MODEL.GEN.IN_CHANNELS = 3
_G.MODEL.GEN.OUT_CHANNELS = 3
_G.MODEL.GEN.DIM = 64  # ngf
_G.MODEL.GEN.N_BLOCKS = 9  # resnet_9blocks (6 for 128x128 images)
_G.MODEL.GEN.N_DOWNSAMPLE = 2
_G.MODEL.GEN.UPSAMPLE = "transpose"  # CycleGAN's transposed convs | nearest (resize-conv)
_G.MODEL.DIS = CN()
_G.MODEL.DIS.NAME = "PatchGANDiscriminator"
_G.MODEL.DIS.DIM = 64  # ndf
_G.MODEL.DIS.N_LAYERS = 3  # 70x70 receptive field
_G.MODEL.DIS.NORM = "in"
_G.LOSS = CN()
_G.LOSS.GAN_MODE = "lsgan"  # lsgan (CycleGAN's default) | vanilla
_G.LOSS.CYCLE = 10.0  # lambda_A = lambda_B
_G.LOSS.IDENTITY = 5.0  # identity mapping, absolute (CycleGAN: lambda_identity 0.5 x 10)
_G.GAN = CN()  # the translator's stage (turned into the core keys of its run)
_G.GAN.MAX_ITER = 200000
_G.GAN.DECAY_START = 100000  # linear LR decay to 0 from this iteration (CycleGAN: half)
_G.GAN.IMS_PER_BATCH = 1  # images per domain and step
_G.GAN.SIZE = (256, 256)  # (H, W) of the translator's training crops (load 286, crop 256)
_G.GAN.PADDING = 15  # pad then random crop back to SIZE (286 -> 256)
_G.GAN.POOL_SIZE = 50  # ImagePool of generated images shown to D
_G.GAN.CHECKPOINT_PERIOD = 10000
_G.GAN.VIS_PERIOD = 5000
_G.GAN.OUTPUT_SUBDIR = "gan"  # OUTPUT_DIR/<this>[_<pair>] holds the translator's run


def add_cyclegan_config(cfg: CN) -> CN:
    """Add the CycleGAN keys ``cfg`` lacks (translator, PatchGAN, loss weights, the ``GAN``
    stage node), ``MODEL.GEN.NAME`` / ``MODEL.DIS.NAME`` when empty, and CycleGAN's Adam
    (lr 2e-4, betas (0.5, 0.999), no weight decay) as ``SOLVER.GEN`` / ``SOLVER.DIS``."""
    merge_missing(cfg, _G)
    cfg.MODEL.GEN.NAME = cfg.MODEL.GEN.NAME or _G.MODEL.GEN.NAME
    cfg.MODEL.DIS.NAME = cfg.MODEL.DIS.NAME or _G.MODEL.DIS.NAME
    for node in (cfg.SOLVER.GEN, cfg.SOLVER.DIS):
        node.LR, node.BETAS, node.WEIGHT_DECAY = 2e-4, (0.5, 0.999), 0.0
    return cfg


_R = CN()
_R.GENERATED = CN()
# Market-layout folder of generated images with its manifest.csv (data.generated); empty =
# OUTPUT_DIR/generated. Written by the generation stage
_R.GENERATED.ROOT = ""
_R.GENERATED.PER_BATCH = 0  # generated images per global batch (CamStyle: 46 of 128 + 46)
_R.GENERATED.BATCH_SIZE = 32  # images per generator forward in the generation stage
_R.GENERATED.ENABLED = True  # False = the baseline: real images only (same recipe)
# True = train on generated images only, DATALOADER.IMS_PER_BATCH of them per step (SPGAN,
# PTGAN: the translated source images with the source labels)
_R.GENERATED.ONLY = False
_R.LOSS = CN()
_R.LOSS.LABEL = CN()  # losses.label_assignment
_R.LOSS.LABEL.REAL = "hard"  # hard | lsr | lsro | argmax | teacher
_R.LOSS.LABEL.GENERATED = "hard"
_R.LOSS.LABEL.EPSILON = 0.1  # LSR's epsilon


def add_generated_reid_config(cfg: CN) -> CN:
    """Add the keys of re-ID training on real + generated images (``GENERATED``,
    ``LOSS.LABEL``) that ``cfg`` lacks."""
    return merge_missing(cfg, _R)


def gan_stage_opts(cfg) -> list[str]:
    """``KEY VALUE`` options that turn the method's config into its translator stage's run:
    ``GAN.MAX_ITER`` -> ``SOLVER.MAX_ITER``, ``GAN.IMS_PER_BATCH`` ->
    ``DATALOADER.IMS_PER_BATCH``, ``GAN.SIZE`` -> ``INPUT.SIZE_TRAIN`` / ``SIZE_TEST``,
    ``GAN.PADDING``, ``GAN.CHECKPOINT_PERIOD``, ``GAN.VIS_PERIOD``, images in ``[-1, 1]``
    (mean = std = 0.5), no random erasing, no test sets. The stage adds its ``OUTPUT_DIR``
    and ``ENGINE.NAME``."""
    g = cfg.GAN
    return [
        "SOLVER.MAX_ITER", str(g.MAX_ITER),
        "SOLVER.CHECKPOINT_PERIOD", str(g.CHECKPOINT_PERIOD),
        "DATALOADER.IMS_PER_BATCH", str(g.IMS_PER_BATCH),
        "INPUT.SIZE_TRAIN", str(tuple(g.SIZE)),
        "INPUT.SIZE_TEST", str(tuple(g.SIZE)),
        "INPUT.PADDING", str(g.PADDING),
        "INPUT.PIXEL_MEAN", "(0.5, 0.5, 0.5)",
        "INPUT.PIXEL_STD", "(0.5, 0.5, 0.5)",
        "INPUT.REA.PROB", "0.0",
        "VIS.PERIOD", str(g.VIS_PERIOD),
        "DATASETS.TESTS", "()",
    ]  # fmt: skip


_D = CN()
_D.DOMAINS = CN()
# The target domain of a cross-domain method (SPGAN, PTGAN): DATASETS entries whose training
# images are used without labels (translation targets); DATASETS.NAMES is the source domain
# (labelled), DATASETS.TESTS is evaluated (normally the target's query / gallery)
_D.DOMAINS.TARGET = ()
# Two domains cut out of one Market-layout folder by identity range (the CPU demos: CUHK03's
# camera pairs), written as symlink folders SOURCE_DIR / TARGET_DIR by the 'domains' stage.
# ROOT empty = off (the domains are real datasets)
_D.DOMAINS.SPLIT = CN()
_D.DOMAINS.SPLIT.ROOT = ""
_D.DOMAINS.SPLIT.SOURCE_DIR = ""
_D.DOMAINS.SPLIT.TARGET_DIR = ""
_D.DOMAINS.SPLIT.SOURCE_TRAIN_PIDS = (1, 767)  # inclusive Market pid ranges
_D.DOMAINS.SPLIT.SOURCE_TEST_PIDS = (768, 843)
_D.DOMAINS.SPLIT.TARGET_TRAIN_PIDS = (844, 1155)
_D.DOMAINS.SPLIT.TARGET_TEST_PIDS = (1156, 1467)


def add_domain_config(cfg: CN) -> CN:
    """Add the cross-domain keys (``DOMAINS``) that ``cfg`` lacks."""
    return merge_missing(cfg, _D)


def add_translate_then_train_config(cfg: CN, engine: str) -> CN:
    """The cross-domain recipe SPGAN and PTGAN share: the CycleGAN translator keys
    (:func:`add_cyclegan_config`, ``LOSS.CYCLE`` 10), the generated-data re-ID keys and the
    ``DOMAINS`` keys; then IDE (``IDEBaseline``) trained on the translated source images only
    (``GENERATED.ONLY``) with their hard source labels, evaluated on the target domain.
    ``ENGINE.NAME`` becomes ``engine`` when empty. The method sets its own keys and its
    ``LOSS.IDENTITY`` after this call."""
    add_cyclegan_config(cfg)
    add_generated_reid_config(cfg)
    add_domain_config(cfg)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or engine
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "IDEBaseline"
    cfg.LOSS.CYCLE = 10.0
    cfg.LOSS.LABEL.REAL, cfg.LOSS.LABEL.GENERATED = "hard", "hard"
    cfg.GENERATED.ONLY = True
    return cfg


_M = CN()
_M.MASKS = CN()  # data.masks: a folder of masks, or a segmentation model cached on disk
_M.MASKS.FOLDER = ""  # <image stem>.png anywhere under it (8-bit, person probability x 255)
_M.MASKS.MODEL = ""  # TorchScript segmentation model, used when FOLDER is empty
_M.MASKS.CACHE = ""  # where the model's masks are cached; empty = OUTPUT_DIR/../mask_cache


def add_mask_config(cfg: CN) -> CN:
    """Add the mask provider's keys (``MASKS``) that ``cfg`` lacks."""
    return merge_missing(cfg, _M)


_LABEL_MODES = ("hard", "lsr", "lsro", "argmax", "teacher")  # losses.label_assignment

#: ``Method.config_rules`` of the translator keys (:func:`add_cyclegan_config`)
CYCLEGAN_RULES = (
    positive("GAN.MAX_ITER"),
    non_negative("GAN.DECAY_START"),
    positive("GAN.IMS_PER_BATCH"),
    positive_size("GAN.SIZE"),
    non_negative("GAN.POOL_SIZE"),
    non_negative("LOSS.CYCLE", integer=False),
    non_negative("LOSS.IDENTITY", integer=False),
    one_of("LOSS.GAN_MODE", ("lsgan", "vanilla")),
)
#: ``Method.config_rules`` of the generated-data re-ID keys (:func:`add_generated_reid_config`)
GENERATED_REID_RULES = (
    non_negative("GENERATED.PER_BATCH"),
    positive("GENERATED.BATCH_SIZE"),
    one_of("LOSS.LABEL.REAL", _LABEL_MODES),
    one_of("LOSS.LABEL.GENERATED", _LABEL_MODES),
    probability("LOSS.LABEL.EPSILON"),
)
