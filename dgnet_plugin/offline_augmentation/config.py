"""Config fragments of the offline generate-then-train pipeline (CamStyle, SPGAN, PTGAN,
LSRO, PN-GAN), shared by their method packages: each method's ``add_<name>_config`` calls
:func:`add_cyclegan_config` and/or :func:`add_generated_reid_config` (the cross-domain ones,
SPGAN and PTGAN, :func:`add_translate_then_train_config`) and then sets its own values.
Defaults are CycleGAN's (Zhu et al. 2017; ``junyanz/pytorch-CycleGAN-and-pix2pix`` as forked
by CamStyle) and CamStyle's re-ID recipe.

The stage that trains the translator runs the method's config with the ``GAN`` node turned
into ``SOLVER.MAX_ITER``, ``SOLVER.IMS_PER_BATCH``, ``INPUT.SIZE_TRAIN`` ... of its own
run (:func:`gan_stage_config`), so one config file describes every stage; ``SOLVER.GEN`` and
``SOLVER.DIS`` are the translator's Adam, ``SOLVER.REID`` / ``SOLVER.MAX_ITER`` the re-ID
stage's.
"""

from __future__ import annotations

from ..config import CfgNode as CN
from ..config import merge_missing
from ..config.validate import non_negative, one_of, positive, positive_size, probability

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
# Dropout inside every residual block (CycleGAN's use_dropout; CamStyle's fork: 0.5, on by
# default, CycleGAN-for-CamStyle/options/base_options.py --no_dropout False); 0 = none
_G.MODEL.GEN.DROPOUT = 0.0
_G.MODEL.GEN.NORM_AFFINE = False  # instance norms with learnable scale / offset (SPGAN: True)
_G.MODEL.GEN.INIT = "normal"  # normal N(0, 0.02) (CycleGAN) | xavier (TF-slim default: SPGAN)
# Zero padding of the strided convs: torch (1 on each side, CycleGAN) | tf_same (TF's SAME: SPGAN)
_G.MODEL.GEN.PADDING = "torch"
_G.MODEL.DIS = CN()
_G.MODEL.DIS.NAME = "PatchGANDiscriminator"
_G.MODEL.DIS.DIM = 64  # ndf
_G.MODEL.DIS.N_LAYERS = 3  # 70x70 receptive field
_G.MODEL.DIS.NORM = "in"
_G.MODEL.DIS.NORM_AFFINE = False  # as MODEL.GEN.NORM_AFFINE
_G.MODEL.DIS.INIT = "normal"  # as MODEL.GEN.INIT (also SPGAN's SiaNet)
_G.MODEL.DIS.PADDING = "torch"  # torch (30x30 map at 256) | tf_same (32x32: SPGAN)
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
# (H, W) the training image is resized to before a random SIZE crop (CycleGAN's
# resize_and_crop: 286 -> 256, a 1.12x zoom); () = resize to SIZE, pad GAN.PADDING and crop
_G.GAN.LOAD_SIZE = ()
_G.GAN.LOAD_INTERPOLATION = "bicubic"  # of that resize: bicubic (CycleGAN) | bilinear (TF)
# Schedule in epochs when > 0: GAN.MAX_ITER = EPOCHS x (iterations per epoch) and the linear
# decay starts DECAY_EPOCHS epochs before the end (0 = constant LR), computed from the two
# domains' training sets when the stage starts; an epoch is EPOCH_SIZE (max | min) of the two
# domains' image counts / GAN.IMS_PER_BATCH (CycleGAN's unaligned dataset: max; SPGAN: min)
_G.GAN.EPOCHS = 0
_G.GAN.DECAY_EPOCHS = 0
_G.GAN.EPOCH_SIZE = "max"
# True = the generators' dropout stays active when the generation stage translates (CamStyle:
# CycleGAN-for-CamStyle/test.py never calls model.eval()); False = eval mode
_G.GAN.DROPOUT_AT_GENERATION = False
_G.GAN.POOL_SIZE = 50  # ImagePool of generated images shown to D
# True = SPGAN's pool as it runs: NumPy re-seeded with 0 every iteration (train_spgan_demo.py
# np.random.seed(0); Utils/utils.py ItemPool), the a2b pool drawn first, so once full each pool
# swaps the same slot every time: D sees the fake stored there one iteration earlier
_G.GAN.POOL_RESEED = False
_G.GAN.CHECKPOINT_PERIOD = 10000
_G.GAN.VIS_PERIOD = 5000
_G.GAN.OUTPUT_SUBDIR = "gan"  # OUTPUT_DIR/<this>[_<pair>] holds the translator's run
_G.INPUT = CN()
_G.INPUT.LOAD_SIZE = ()  # the translator stage's GAN.LOAD_SIZE (data.transforms)
_G.INPUT.LOAD_INTERPOLATION = "bicubic"


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
# True = train on generated images only, SOLVER.IMS_PER_BATCH of them per step (SPGAN,
# PTGAN: the translated source images with the source labels)
_R.GENERATED.ONLY = False
# True = the real and the generated images of a step go through two forward passes (batch-norm
# statistics per stream) and the loss is mean(real) + mean(generated), each over its own
# samples (CamStyle: reid/trainers.py, CamStyleTrainer._forward); False = one forward over the
# mixed batch and one mean over all its samples (LSRO: one pool of real and generated images)
_R.GENERATED.SEPARATE_FORWARD = False
# How a step's images are drawn: fixed = SOLVER.IMS_PER_BATCH real + GENERATED.PER_BATCH
# generated, each part from its own shuffled stream (CamStyle: 128 + 46) | pool = batches of
# SOLVER.IMS_PER_BATCH from one shuffled pool of every real and generated image, an epoch
# being the pool (LSRO: layumi/Person-reID_GAN examples/cnn_train_dag.m; PER_BATCH not read)
_R.GENERATED.MIXING = "fixed"
_R.INPUT = CN()
# MatConvNet's random crop before the resize to SIZE_TRAIN (vl_imreadjpeg 'CropSize',
# 'CropLocation' random; LSRO: layumi/Person-reID_GAN train_id_net_res_market_lsro.m
# CropSize [0.85, 1]): (min, max) fraction of the largest crop of the CROP_ANISOTROPY shape
# that fits the image, drawn so that its area is uniform; () = off (data.transforms.MatConvNetCrop)
_R.INPUT.CROP_SCALE = ()
# (min, max) of the crop's change of aspect relative to SIZE_TRAIN's (log-uniform); (1, 1) =
# the crop has SIZE_TRAIN's shape (vl_imreadjpeg's default 'CropAnisotropy'); (0, 0) = the
# crop has the image's own shape
_R.INPUT.CROP_ANISOTROPY = (1.0, 1.0)
# The resize filter of the training images (the test resize stays bicubic): bicubic |
# bilinear (SPGAN's Caffe IDE: ImageData, OpenCV's bilinear resize)
_R.INPUT.INTERPOLATION_TRAIN = "bicubic"
# CamStyle's training crop (reid/utils/data/transforms.py, RandomSizedRectCrop: 0.64-1 of the
# area, aspect 2-3, bilinear resize; then flip) instead of resize + pad + random crop
_R.INPUT.RANDOM_SIZED_RECT_CROP = False
_R.MODEL = CN()
_R.MODEL.HEADS = CN()
# Init of the bottleneck's BatchNorm1d scale: normal N(1, 0.02) (Person_reID_baseline) | ones
# (CamStyle, reid/models/resnet.py: init.constant(feat_bn.weight, 1))
_R.MODEL.HEADS.BN_INIT = "normal"
_R.SOLVER = CN()
_R.SOLVER.REID = CN()
# Parameter-name prefixes of the re-ID model that are not trained (e.g. SPGAN's Caffe IDE:
# conv1 and res2 at lr_mult 0 -> backbone.conv1, backbone.bn1, backbone.layer1)
_R.SOLVER.REID.FROZEN = ()
# True = every batch norm's scale and shift are not trained either (Caffe's Scale layers at
# lr_mult 0; with MODEL.NORM FrozenBN the statistics are frozen too)
_R.SOLVER.REID.FREEZE_BN_AFFINE = False
# Caffe-style multipliers of the classifier head (weight lr, weight decay, bias lr, bias decay),
# relative to SOLVER.REID.BASE_LR / WEIGHT_DECAY; the rest of the model at BASE_LR. () = the
# head at HEADS_LR_FACTOR x (torchreid's staged_lr). SPGAN's fc8: (2, 2, 4, 0)
_R.SOLVER.REID.HEAD_MULTS = ()
_R.LOSS = CN()
_R.LOSS.LABEL = CN()  # .label_assignment
_R.LOSS.LABEL.REAL = "hard"  # hard | lsr | lsro | argmax | teacher
_R.LOSS.LABEL.GENERATED = "hard"
_R.LOSS.LABEL.EPSILON = 0.1  # LSR's epsilon


def add_generated_reid_config(cfg: CN) -> CN:
    """Add the keys of re-ID training on real + generated images (``GENERATED``,
    ``LOSS.LABEL``) that ``cfg`` lacks."""
    return merge_missing(cfg, _R)


def gan_schedule(cfg, sizes: tuple[int, int] | None = None) -> tuple[int, int]:
    """``(max_iter, decay_start)`` of the translator stage: ``GAN.MAX_ITER`` /
    ``GAN.DECAY_START``, or with ``GAN.EPOCHS`` > 0 ``EPOCHS`` epochs of ``max`` (or ``min``,
    ``GAN.EPOCH_SIZE``) of the two domains' training-image counts ``sizes`` //
    ``GAN.IMS_PER_BATCH`` iterations, the linear decay over the last ``GAN.DECAY_EPOCHS``
    (CamStyle's fork: 30 + 20 epochs of max(|A|, |B|), ``train_options.py`` and
    ``data/reid_dataset.py``; SPGAN: 6 epochs of min(|a|, |b|), constant LR).

    Raises:
        ConfigError: ``GAN.EPOCHS`` > 0 without ``sizes``, an unknown ``EPOCH_SIZE``, or
            ``DECAY_EPOCHS`` > ``EPOCHS``.
    """
    from ..config import ConfigError

    g = cfg.GAN
    epochs = int(g.get("EPOCHS", 0))
    if epochs <= 0:
        return int(g.MAX_ITER), int(g.DECAY_START)
    if sizes is None:
        raise ConfigError("GAN.EPOCHS > 0 needs the domains' sizes: use GAN.MAX_ITER here")
    if g.EPOCH_SIZE not in ("max", "min"):
        raise ConfigError(f"GAN.EPOCH_SIZE '{g.EPOCH_SIZE}': choose max or min")
    if not 0 <= g.DECAY_EPOCHS <= epochs:
        raise ConfigError(f"GAN.DECAY_EPOCHS {g.DECAY_EPOCHS} must lie in 0..GAN.EPOCHS")
    per_epoch = max(1, (max(sizes) if g.EPOCH_SIZE == "max" else min(sizes)) // g.IMS_PER_BATCH)
    return epochs * per_epoch, (epochs - int(g.DECAY_EPOCHS)) * per_epoch


def gan_stage_config(cfg, sizes: tuple[int, int] | None = None) -> dict:
    """The merges (``{KEY: value}``) that turn the method's config into its translator
    stage's derived config: the schedule of :func:`gan_schedule` (``sizes``: the two
    domains' training-image counts, needed with ``GAN.EPOCHS``) -> ``SOLVER.MAX_ITER`` /
    ``GAN.DECAY_START``, ``GAN.IMS_PER_BATCH`` -> ``SOLVER.IMS_PER_BATCH``, ``GAN.SIZE``
    -> ``INPUT.SIZE_TRAIN`` / ``SIZE_TEST``, ``GAN.PADDING``, ``GAN.LOAD_SIZE`` (when set),
    ``GAN.CHECKPOINT_PERIOD``, ``GAN.VIS_PERIOD``, images in ``[-1, 1]`` (mean = std =
    0.5), no random erasing and no re-ID crop (``INPUT.RANDOM_SIZED_RECT_CROP``, ``CROP_SCALE``), no
    test sets. The stage adds its ``OUTPUT_DIR`` and ``ENGINE.NAME``."""
    g = cfg.GAN
    max_iter, decay_start = gan_schedule(cfg, sizes)
    out = {}
    if g.get("LOAD_SIZE"):
        out["INPUT.LOAD_SIZE"] = tuple(g.LOAD_SIZE)
        out["INPUT.LOAD_INTERPOLATION"] = g.LOAD_INTERPOLATION
    if "DECAY_START" in g:
        out["GAN.DECAY_START"] = decay_start
    if "RANDOM_SIZED_RECT_CROP" in cfg.INPUT:  # the re-ID stage's crop is not the translator's
        out["INPUT.RANDOM_SIZED_RECT_CROP"] = False
    if "CROP_SCALE" in cfg.INPUT:
        out["INPUT.CROP_SCALE"] = ()
    out.update(
        {
            "SOLVER.MAX_ITER": max_iter,
            "SOLVER.CHECKPOINT_PERIOD": g.CHECKPOINT_PERIOD,
            "SOLVER.IMS_PER_BATCH": g.IMS_PER_BATCH,
            "INPUT.SIZE_TRAIN": tuple(g.SIZE),
            "INPUT.SIZE_TEST": tuple(g.SIZE),
            "INPUT.PADDING": g.PADDING,
            "INPUT.PIXEL_MEAN": (0.5, 0.5, 0.5),
            "INPUT.PIXEL_STD": (0.5, 0.5, 0.5),
            "INPUT.REA.PROB": 0.0,
            "VIS.PERIOD": g.VIS_PERIOD,
            "DATASETS.TESTS": (),
        }
    )
    return out


#: what a translator / GAN stage does not read: the re-ID recipe of the same config file
GAN_STAGE_IGNORES = (
    "SOLVER.REID",
    "SOLVER.STEPS",
    "SOLVER.REID_GAMMA",
    "GENERATED",
    "LOSS.LABEL",
    "MODEL.HEADS",
    "MODEL.BACKBONE",
    "MODEL.WEIGHTS",
)


#: ``SOLVER_KEYS`` of a generator/discriminator stage (CycleGAN translators, LSRO's DCGAN,
#: PN-GAN's pose GAN): its two Adams and its precision, not the re-ID stage's ``SOLVER.REID``
#: / ``STEPS`` that live in the same config file.
GAN_SOLVER_KEYS = ("SOLVER.GEN", "SOLVER.DIS", "SOLVER.AMP")


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
_M.MASKS = CN()  # .masks: a folder of masks, or a segmentation model cached on disk
_M.MASKS.FOLDER = ""  # <image stem>.png anywhere under it (8-bit, person probability x 255)
_M.MASKS.MODEL = ""  # TorchScript segmentation model, used when FOLDER is empty
_M.MASKS.CACHE = ""  # where the model's masks are cached; empty = OUTPUT_DIR/../mask_cache


def add_mask_config(cfg: CN) -> CN:
    """Add the mask provider's keys (``MASKS``) that ``cfg`` lacks."""
    return merge_missing(cfg, _M)


_LABEL_MODES = ("hard", "lsr", "lsro", "argmax", "teacher")  # .label_assignment

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
    one_of("GENERATED.MIXING", ("fixed", "pool")),
    one_of("INPUT.INTERPOLATION_TRAIN", ("bicubic", "bilinear")),
    positive("GENERATED.BATCH_SIZE"),
    one_of("LOSS.LABEL.REAL", _LABEL_MODES),
    one_of("LOSS.LABEL.GENERATED", _LABEL_MODES),
    probability("LOSS.LABEL.EPSILON"),
)
