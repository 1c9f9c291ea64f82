"""Default configuration.

Every value that has a DG-Net meaning carries the official Market-1501 recipe
(``../shared/reference/dgnet.md`` section 2); the comments give the official config name.
``add_dgnet_config`` is the detectron2-style hook other projects call to add these keys to
their own ``CfgNode``. The IDE teacher engine reads a subset of the same keys.
"""

from __future__ import annotations

import os

from .config import CfgNode as CN

_C = CN()
_C.OUTPUT_DIR = "output/default"
_C.SEED = 7
_C.LOG_PERIOD = 20  # iterations between console / TensorBoard / metrics.json scalars
_C.CUDNN_BENCHMARK = True  # CUDA only: torch.backends.cudnn.benchmark (fixed input sizes)

_C.ENGINE = CN()
_C.ENGINE.NAME = "DGNetEngine"  # ENGINE registry: DGNetEngine | TeacherEngine

# ----------------------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = "DGNet"  # META_ARCH registry: DGNet | IDEBaseline
_C.MODEL.DEVICE = "auto"  # auto = cuda when available, else cpu
_C.MODEL.WEIGHTS = ""  # checkpoint loaded before training / for --eval-only
_C.MODEL.CHANNELS_LAST = True  # CUDA only: networks and image batches in channels_last
_C.MODEL.COMPILE = False  # CUDA only: torch.compile the forward of Es, G and D
# Batch norm of the re-ID networks (Ea, the IDE teacher), fastreid's names: BN (per-process
# batch statistics) | syncBN (SyncBatchNorm over all processes; CUDA only, plain BN in one
# process) | FrozenBN (running statistics, never updated; affine weights still learn)
_C.MODEL.NORM = "BN"

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "resnet50"  # BACKBONE registry: resnet50 | mobilenetv2
_C.MODEL.BACKBONE.LAST_STRIDE = 1  # official ID_stride: 1
_C.MODEL.BACKBONE.PRETRAIN = True  # ImageNet weights
_C.MODEL.BACKBONE.PRETRAIN_PATH = ""  # local ImageNet weights; empty = torchvision download

_C.MODEL.HEADS = CN()
_C.MODEL.HEADS.NAME = "ClassBlock"  # HEAD registry
_C.MODEL.HEADS.EMBED_DIM = 512
_C.MODEL.HEADS.NUM_CLASSES = 0  # 0 = number of training identities
_C.MODEL.HEADS.DROPOUT = 0.5  # primary head (and the teacher's head)
_C.MODEL.HEADS.FINE_DROPOUT = 0.75  # fine-grained head
_C.MODEL.HEADS.POOL = "max"  # global pooling of the re-ID feature map: max | avg
_C.MODEL.HEADS.NUM_PARTS = 4  # stripes of the appearance code (AdaptiveMaxPool2d((4, 1)))

_C.MODEL.GEN = CN()
_C.MODEL.GEN.NAME = "AdaINGen"  # GENERATOR registry
_C.MODEL.GEN.DIM = 16  # gen.dim
_C.MODEL.GEN.N_DOWNSAMPLE = 2
_C.MODEL.GEN.N_RES = 4
_C.MODEL.GEN.MLP_DIM = 512
_C.MODEL.GEN.MLP_LAYERS = 3
_C.MODEL.GEN.ASPP_DILATIONS = (3, 6, 9)

_C.MODEL.DIS = CN()
_C.MODEL.DIS.NAME = "MultiScalePatchGAN"  # DISCRIMINATOR registry
_C.MODEL.DIS.DIM = 32
_C.MODEL.DIS.N_LAYER = 2
_C.MODEL.DIS.N_RES = 4
_C.MODEL.DIS.NUM_SCALES = 3
_C.MODEL.DIS.GRAD_PENALTY = 0.01  # LAMBDA of the real-image gradient regulariser

_C.MODEL.TEACHER = CN()
_C.MODEL.TEACHER.WEIGHTS = ""  # teacher checkpoint (an IDEBaseline trained by this tool)
_C.MODEL.TEACHER.CONFIG = ""  # config that trains it when WEIGHTS does not exist yet
_C.MODEL.TEACHER.TRAIN_BN = True  # official train_bn: teacher BN uses batch statistics

# ----------------------------------------------------------------------------- input
_C.INPUT = CN()
_C.INPUT.SIZE_TRAIN = (256, 128)  # (H, W)
_C.INPUT.SIZE_TEST = (256, 128)
_C.INPUT.PADDING = 10  # Pad(10, edge) then RandomCrop
_C.INPUT.FLIP_PROB = 0.5
_C.INPUT.PIXEL_MEAN = (0.485, 0.456, 0.406)
_C.INPUT.PIXEL_STD = (0.229, 0.224, 0.225)
_C.INPUT.REA = CN()  # random erasing, applied only to the copies scored by the ID losses
_C.INPUT.REA.PROB = 0.5
_C.INPUT.REA.AREA = (0.02, 0.4)
_C.INPUT.REA.MIN_ASPECT = 0.3
_C.INPUT.REA.VALUE = 0.0

# ----------------------------------------------------------------------------- data
_C.DATASETS = CN()
_C.DATASETS.ROOT = os.environ.get("REID_DATA", "datasets")
_C.DATASETS.NAMES = ("market1501",)  # training sets (torchreid names or market_layout)
_C.DATASETS.TESTS = ("market1501",)

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 8
# Images per step over ALL processes (fastreid's convention), per stream: DG-Net draws two
# streams of (image, positive). Each of N processes (torchrun / --num-gpus N) gets
# IMS_PER_BATCH / N, so the recipe does not change with the number of GPUs.
_C.DATALOADER.IMS_PER_BATCH = 8

# ----------------------------------------------------------------------------- solver
_C.SOLVER = CN()
_C.SOLVER.MAX_ITER = 100000
_C.SOLVER.CHECKPOINT_PERIOD = 10000
_C.SOLVER.AMP = "bf16"  # CUDA only: bf16 | fp16 (autocast + GradScaler) | off (float32)
_C.SOLVER.STEPS = (60000, 90000, 105000)  # per-iteration MultiStepLR milestones
_C.SOLVER.GAMMA = 0.1  # G and D
_C.SOLVER.REID_GAMMA = 0.1  # Ea (official gamma2)

_C.SOLVER.GEN = CN()  # Adam on Es + decoder + MLPs
_C.SOLVER.GEN.LR = 1e-4
_C.SOLVER.GEN.BETAS = (0.0, 0.999)
_C.SOLVER.GEN.WEIGHT_DECAY = 5e-4

_C.SOLVER.DIS = CN()
_C.SOLVER.DIS.LR = 1e-4
_C.SOLVER.DIS.BETAS = (0.0, 0.999)
_C.SOLVER.DIS.WEIGHT_DECAY = 5e-4

_C.SOLVER.REID = CN()  # optimiser of Ea or of the teacher
_C.SOLVER.REID.OPTIM = (
    "sgd"  # torchreid build_optimizer name: sgd | adam | amsgrad | rmsprop | radam
)
_C.SOLVER.REID.BASE_LR = 0.002  # official lr2 (backbone)
_C.SOLVER.REID.HEADS_LR_FACTOR = 10.0  # classifiers at 10x
_C.SOLVER.REID.MOMENTUM = 0.9
_C.SOLVER.REID.NESTEROV = True
_C.SOLVER.REID.WEIGHT_DECAY = 5e-4

# ----------------------------------------------------------------------------- losses
_C.LOSS = CN()
_C.LOSS.RECON_X = 5.0  # recon_x_w   L_img1
_C.LOSS.RECON_XP = 5.0  # recon_xp_w  L_img2
_C.LOSS.ID = 1.0  # id_w        L_id^s
_C.LOSS.PID = 1.0  # pid_w
_C.LOSS.RECON_ID = 0.5  # recon_id_w  L_id^c
_C.LOSS.GAN = 1.0  # gan_w       L_adv
_C.LOSS.RECON_CODE_MAX = 1.0  # max_w: recon_f_w and recon_s_w ramp to it
_C.LOSS.CYCLE_MAX = 2.0  # max_cyc_w
_C.LOSS.TEACHER_MAX = 2.0  # max_teacher_w (lambda_prim)
_C.LOSS.FINE = 0.2  # B_w: lambda_fine = FINE * lambda_prim
_C.LOSS.WARM_ITER = 30000  # code-recon and cycle ramps start
_C.LOSS.WARM_TEACHER_ITER = 30000  # teacher ramp starts
_C.LOSS.WARM_SCALE = 0.0005  # ramp increment per iteration
_C.LOSS.STRUCTURE_ENCODER_AGAIN = 0.5  # use_encoder_again
_C.LOSS.LABEL_SMOOTH = 0.0  # teacher (IDE) cross-entropy label smoothing

# ----------------------------------------------------------------------------- test
_C.TEST = CN()
_C.TEST.EVAL_PERIOD = 10000  # iterations; 0 = only at the end
_C.TEST.IMS_PER_BATCH = 80  # per process (each extracts the features of its shard)
_C.TEST.FLIP = True
_C.TEST.ALPHA = 0.5  # query-side weight of the fine-grained half
_C.TEST.METRIC = "cosine"  # cosine | euclidean (squared, torchreid's convention)
_C.TEST.MEMORY_MB = 512  # working memory of one query chunk of the ranking
_C.TEST.CUHK03_CLASSIC = False  # also report CUHK03's single-gallery-shot CMC
_C.TEST.MULTI_QUERY_DIR = ""  # Market-1501 gt_bbox folder: adds a multi-query row
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


def add_dgnet_config(cfg: CN) -> CN:
    """Add every DG-Net key (with its default) that ``cfg`` does not have yet."""
    _merge_missing(cfg, _C)
    return cfg


def _merge_missing(dst: CN, src: CN) -> None:
    for k, v in src.items():
        if k not in dst:
            dst[k] = v.clone() if isinstance(v, CN) else v
        elif isinstance(v, CN) and isinstance(dst[k], CN):
            _merge_missing(dst[k], v)
