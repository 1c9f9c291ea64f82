"""Core defaults: the keys every engine of the package reads.

Method-specific keys live in the method's package (``dgnet_plugin/methods/<name>/config.py``,
``add_<name>_config(cfg)``, fastreid ``projects/`` style) and are added when a config of that
method is loaded (:func:`dgnet_plugin.config.load_cfg_file` looks the method up from
``ENGINE.NAME``). The nodes that several GAN methods share (the Adam nodes ``SOLVER.GEN`` /
``SOLVER.DIS``) default to DCGAN's Adam (Radford et al. 2016, also CycleGAN's); a method
sets its own values in its ``add_<name>_config``.
"""

from __future__ import annotations

import os

from .config import CfgNode as CN
from .config import register_renamed_key

_C = CN()
_C.OUTPUT_DIR = "output/default"
_C.SEED = 7
_C.LOG_PERIOD = 20  # iterations between console / TensorBoard / metrics.json scalars
_C.CUDNN_BENCHMARK = True  # CUDA only: torch.backends.cudnn.benchmark (fixed input sizes)

_C.ENGINE = CN()
_C.ENGINE.NAME = ""  # ENGINE registry; it also selects the method whose keys are added

# ----------------------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = ""  # META_ARCH registry (e.g. DGNet, IDEBaseline)
_C.MODEL.DEVICE = "auto"  # auto = cuda when available, else cpu
_C.MODEL.WEIGHTS = ""  # checkpoint loaded before training / for --eval-only
_C.MODEL.CHANNELS_LAST = True  # CUDA only: networks and image batches in channels_last
_C.MODEL.COMPILE = False  # CUDA only: torch.compile the networks the method names
# Batch norm of the re-ID networks (Ea, the IDE teacher), fastreid's names: BN (per-process
# batch statistics) | syncBN (SyncBatchNorm over all processes; CUDA only, plain BN in one
# process) | FrozenBN (running statistics, never updated; affine weights still learn)
_C.MODEL.NORM = "BN"

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "resnet50"  # BACKBONE registry: resnet50 | mobilenetv2
_C.MODEL.BACKBONE.LAST_STRIDE = 1  # official ID_stride: 1
_C.MODEL.BACKBONE.PRETRAIN = True  # ImageNet weights
_C.MODEL.BACKBONE.PRETRAIN_PATH = ""  # local ImageNet weights; empty = torchvision download
# Input channels: 3 = RGB; 1 = infrared / gray; 4 = [RGB; IR]; image + pose maps. The first
# convolution is derived from the RGB one (extra channels: mean of the RGB filters)
_C.MODEL.BACKBONE.IN_CHANNELS = 3

_C.MODEL.HEADS = CN()
_C.MODEL.HEADS.NAME = "EmbeddingHead"  # HEAD registry
_C.MODEL.HEADS.EMBEDDING_DIM = 512
_C.MODEL.HEADS.NUM_CLASSES = 0  # 0 = number of training identities
_C.MODEL.HEADS.DROPOUT = 0.5  # dropout of the embedding head
_C.MODEL.HEADS.POOL = "max"  # global pooling of the re-ID feature map: max | avg
# EmbeddingHead options of the IDE-style re-ID models (IDE, CamStyle, SPGAN, PTGAN, LSRO,
# PN-GAN): a ReLU after the bottleneck BN (CamStyle's head), and the test feature: "embed"
# (the bottleneck output, after its BN) or "pool" (the pooled backbone feature, e.g. the
# 2048-d pool5 of ResNet-50 that CamStyle, SPGAN and LSRO evaluate). EMBEDDING_DIM 0 = no
# bottleneck (pool -> dropout -> classifier).
_C.MODEL.HEADS.NECK_RELU = False
_C.MODEL.HEADS.TEST_FEATURE = "embed"

# Generator and discriminator, by registry name; each method adds the keys its networks read
_C.MODEL.GEN = CN()
_C.MODEL.GEN.NAME = ""  # GENERATOR registry
_C.MODEL.DIS = CN()
_C.MODEL.DIS.NAME = ""  # DISCRIMINATOR registry

# ----------------------------------------------------------------------------- input
_C.INPUT = CN()
_C.INPUT.SIZE_TRAIN = (256, 128)  # (H, W)
_C.INPUT.SIZE_TEST = (256, 128)
_C.INPUT.PADDING = 10  # Pad(10, PADDING_MODE) then RandomCrop
# Fill of that padding: edge (replicate the border; DG-Net / IDE, person-reid baseline) |
# constant (zeros, torchvision's Pad default; AGW's train.py Pad(10))
_C.INPUT.PADDING_MODE = "edge"
_C.INPUT.FLIP_PROB = 0.5
# PIL mode the loaders read images in: RGB | L (infrared / gray, one channel). Normalisation
# statistics given for RGB are adapted to 1 channel (their mean, data.transforms.channel_stats)
_C.INPUT.FORMAT = "RGB"
_C.INPUT.PIXEL_MEAN = (0.485, 0.456, 0.406)
_C.INPUT.PIXEL_STD = (0.229, 0.224, 0.225)
_C.INPUT.REA = CN()  # random erasing, applied only to the copies scored by the ID losses
_C.INPUT.REA.PROB = 0.5
_C.INPUT.REA.AREA = (0.02, 0.4)
_C.INPUT.REA.MIN_ASPECT = 0.3
_C.INPUT.REA.VALUE = 0.0

# ----------------------------------------------------------------------------- data
# Every entry of NAMES / TESTS is a torchreid dataset name (or market_layout = any folder in
# the Market-1501 layout), optionally with a root of its own: 'name' is the dataset under
# DATASETS.ROOT, 'name@/path/to/root' the dataset under that root (the same meaning as
# DATASETS.ROOT: for market_layout the folder holding bounding_box_train/, for market1501 the
# folder holding market1501/). So one run can train on one folder and test on others, e.g.
# NAMES ('market_layout',) TESTS ('market_layout@/data/Market-1501-v15.09.15',).
# Test results are reported as 'name' (under ROOT) or 'name@<last folder of the root>'.
# --eval-only reads no training set: the identity count comes from MODEL.WEIGHTS.
_C.DATASETS = CN()
_C.DATASETS.ROOT = os.environ.get("REID_DATA", "datasets")
_C.DATASETS.NAMES = ("market1501",)  # training sets, merged (identities offset per set)
_C.DATASETS.TESTS = ("market1501",)  # test sets, each evaluated on its own query/gallery
# Scan of Market-layout folders before training (counts, skipped files and why, images below
# MIN_IMAGE_SIZE, queries without a true match): quick (file names and headers) | full (decode
# every image, cached in OUTPUT_DIR/dataset_scan.json) | off
_C.DATASETS.SCAN = "quick"
_C.DATASETS.MIN_IMAGE_SIZE = (16, 8)  # (H, W) below which an image is reported

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 8
# True = a fresh permutation of the training images every epoch; False = every epoch in the
# training list's own order (the DCGAN fork of LSRO reads its glob list in order,
# layumi/DCGAN-tensorflow model.py train). Plain and pair loaders (data.build)
_C.DATALOADER.SHUFFLE = True
# Cross-modality batches (sysu_mm01, regdb): NUM_IDS identities x (NUM_INSTANCE visible +
# NUM_INSTANCE infrared) images per step (AGW: 8 x (4 + 4))
_C.DATALOADER.NUM_IDS = 8
_C.DATALOADER.NUM_INSTANCE = 4
# Cross-modality batches (visible-infrared methods): epoch (identities shuffled once per pass
# and cut into groups of NUM_IDS; images without replacement when an identity has enough) |
# agw (AGW's IdentitySampler: random identities per batch, images drawn with replacement)
_C.DATALOADER.VI_SAMPLER = "epoch"

# ----------------------------------------------------------------------------- solver
_C.SOLVER = CN()
# Images per step over ALL processes (fastreid's convention), per stream: DG-Net draws two
# streams of (image, positive). Each of N processes (torchrun / --num-gpus N) gets
# IMS_PER_BATCH / N, so the recipe does not change with the number of GPUs.
_C.SOLVER.IMS_PER_BATCH = 8
_C.SOLVER.MAX_ITER = 100000
_C.SOLVER.CHECKPOINT_PERIOD = 10000
# Periodic checkpoints kept (detectron2's max_to_keep): the last N model_<iter>.pth, plus
# model_final.pth and the one last_checkpoint names; 0 = keep all
_C.SOLVER.CHECKPOINT_KEEP = 0
# Stop a diverging run (checked on the loss means of every LOG_PERIOD; 0 = off): a term above
# MAX_LOSS, or grown more than GROWTH_FACTOR times over WINDOW log periods. NaN/Inf always stops.
_C.SOLVER.DIVERGENCE = CN()
_C.SOLVER.DIVERGENCE.MAX_LOSS = 0.0
_C.SOLVER.DIVERGENCE.GROWTH_FACTOR = 0.0
_C.SOLVER.DIVERGENCE.WINDOW = 10
_C.SOLVER.AMP = "bf16"  # CUDA only: bf16 | fp16 (autocast + GradScaler) | off (float32)
_C.SOLVER.STEPS = (60000, 90000, 105000)  # per-iteration MultiStepLR milestones
_C.SOLVER.GAMMA = 0.1  # LR decay of the generator / discriminator optimisers
_C.SOLVER.REID_GAMMA = 0.1  # LR decay of the re-ID network's optimiser

# Adam of a GAN method's generator(s) and discriminator(s); defaults: DCGAN's (Radford et al.
# 2016, section 4), which CycleGAN keeps; every method sets its own in add_<name>_config
_C.SOLVER.GEN = CN()
_C.SOLVER.GEN.LR = 2e-4
_C.SOLVER.GEN.BETAS = (0.5, 0.999)
_C.SOLVER.GEN.WEIGHT_DECAY = 0.0

_C.SOLVER.DIS = CN()
_C.SOLVER.DIS.LR = 2e-4
_C.SOLVER.DIS.BETAS = tuple([0.5, 0.999])  # a tuple of its own (no YAML anchor in dumps)
_C.SOLVER.DIS.WEIGHT_DECAY = 0.0

_C.SOLVER.REID = CN()  # optimiser of the re-ID network (DG-Net's Ea, the IDE baseline)
_C.SOLVER.REID.OPTIM = (
    "sgd"  # torchreid build_optimizer name: sgd | adam | amsgrad | rmsprop | radam
)
_C.SOLVER.REID.BASE_LR = 0.002  # official lr2 (backbone)
_C.SOLVER.REID.HEADS_LR_FACTOR = 10.0  # classifiers at 10x
_C.SOLVER.REID.MOMENTUM = 0.9
_C.SOLVER.REID.NESTEROV = True
_C.SOLVER.REID.WEIGHT_DECAY = 5e-4

# ----------------------------------------------------------------------------- losses
_C.LOSS = CN()  # loss weights: each method adds its own terms

# ----------------------------------------------------------------------------- test
_C.TEST = CN()
_C.TEST.EVAL_PERIOD = 10000  # iterations; 0 = only at the end
_C.TEST.IMS_PER_BATCH = 80  # per process (each extracts the features of its shard)
_C.TEST.FLIP = True
_C.TEST.METRIC = "cosine"  # cosine | euclidean (squared, torchreid's convention)
_C.TEST.MEMORY_MB = 512  # working memory of one query chunk of the ranking
_C.TEST.CUHK03_CLASSIC = False  # also report CUHK03's single-gallery-shot CMC
_C.TEST.MULTI_QUERY_DIR = ""  # Market-1501 gt_bbox folder: adds a multi-query row
# Cross-modality protocols (evaluation.cross_modality): SYSU-MM01 gallery draws per setting
# (seeded 0..TRIALS-1, or the official rand_perm_cam.mat when RAND_PERM_FILE is given), its
# search modes and shots; RegDB is evaluated in both directions
_C.TEST.CROSS_MODALITY = CN()
_C.TEST.CROSS_MODALITY.TRIALS = 10
_C.TEST.CROSS_MODALITY.MODES = ("all", "indoor")
_C.TEST.CROSS_MODALITY.SHOTS = ("single", "multi")
_C.TEST.CROSS_MODALITY.RAND_PERM_FILE = ""
_C.TEST.RERANK = False  # k-reciprocal re-ranking (Zhong et al. 2017); O((Q+G)^2) memory
_C.TEST.RERANK_K1 = 20
_C.TEST.RERANK_K2 = 6
_C.TEST.RERANK_LAMBDA = 0.3
_C.TEST.VISRANK = False  # ranked-list pictures (torchreid) in OUTPUT_DIR/visrank/<dataset>
_C.TEST.VISRANK_TOPK = 10
_C.TEST.VISRANK_MAX_QUERIES = 100

# ----------------------------------------------------------------------------- visualisation
_C.VIS = CN()
_C.VIS.PERIOD = 5000  # iterations between sample grids (0 = only at the end)
_C.VIS.NUM_IMAGES = 16  # display_size

# Keys renamed to fastreid's names (saved config.yaml files and old configs still load, with
# one warning line each)
register_renamed_key("DATALOADER.IMS_PER_BATCH", "SOLVER.IMS_PER_BATCH")
register_renamed_key("DATALOADER.NUM_INSTANCES", "DATALOADER.NUM_INSTANCE")
register_renamed_key("MODEL.HEADS.EMBED_DIM", "MODEL.HEADS.EMBEDDING_DIM")
