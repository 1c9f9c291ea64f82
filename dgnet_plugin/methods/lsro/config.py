"""``add_lsro_config``: LSRO's keys (Zheng et al., ICCV 2017). The DCGAN stage's values follow
the authors' DCGAN-tensorflow fork (layumi/DCGAN-tensorflow: Adam 2e-4, beta1 0.5, batch 64,
BCE loss, U(-1, 1) 100-d noise, 5x5 layers, two generator steps per discriminator step, 25
epochs, no flip); the re-ID stage is the offline pipeline's
(:func:`~dgnet_plugin.offline_augmentation.config.add_generated_reid_config`) with LSRO's uniform
label on the generated images. ``configs/lsro_r50.yml`` sets the authors' re-ID recipe
(layumi/Person-reID_GAN)."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...offline_augmentation.config import add_cyclegan_config, add_generated_reid_config

_L = CN()
_L.ENGINE = CN()
_L.ENGINE.NAME = ""  # LSROEngine (the re-ID stage) unless given
_L.MODEL = CN()
_L.MODEL.META_ARCHITECTURE = ""  # IDEBaseline unless given
_L.MODEL.GEN = CN()
_L.MODEL.GEN.NAME = "DCGANGenerator"
_L.MODEL.GEN.Z_DIM = 100  # layumi/DCGAN-tensorflow model.py: z_dim 100
# the noise: uniform = U(-1, 1) (DCGAN-tensorflow model.py train: np.random.uniform(-1, 1))
# | normal = N(0, I)
_L.MODEL.GEN.NOISE = "uniform"
# layer layout of the DCGAN (modeling.generators.dcgan): tensorflow = the authors' fork
# (model.py generator / discriminator, ops.py: 5x5 kernels, 4 stride-2 stages, widest 8 x
# DIM = 512, a linear projection of z and a linear logit) | pytorch = 4x4 kernels, one stage
# per doubling from 4 px (5 at 128x64, widest 1024)
_L.MODEL.GEN.ARCH = "tensorflow"
_L.MODEL.GEN.DIM = 64  # width of the last transposed convolution (gf_dim 64)
_L.MODEL.DIS = CN()
_L.MODEL.DIS.NAME = "DCGANDiscriminator"
_L.MODEL.DIS.ARCH = "tensorflow"
_L.MODEL.DIS.DIM = 64  # width of the first convolution (df_dim 64)
_L.LOSS = CN()
_L.LOSS.GAN_MODE = "vanilla"  # DCGAN's BCE adversarial loss
_L.LOSS.LABEL = CN()
_L.LOSS.LABEL.GENERATED = "lsro"  # uniform over the K identities (Eq. 4)
_L.GAN = CN()  # the DCGAN stage (see offline_augmentation.config.gan_stage_config)
# the DCGAN stage's length in iterations when LSRO.GAN_EPOCHS is 0 (else computed from the data)
_L.GAN.MAX_ITER = 30000
_L.GAN.DECAY_START = 30000  # DCGAN: constant learning rate (no decay)
_L.GAN.IMS_PER_BATCH = 64
_L.GAN.SIZE = (128, 64)  # (H, W) the DCGAN generates
_L.GAN.PADDING = 0  # no pad-and-crop: whole resized pedestrians
_L.GAN.CHECKPOINT_PERIOD = 5000
_L.GAN.VIS_PERIOD = 1000
_L.GAN.OUTPUT_SUBDIR = "dcgan"
_L.GENERATED = CN()
_L.GENERATED.PER_BATCH = 32  # generated images per step beside SOLVER.IMS_PER_BATCH real
_L.LSRO = CN()
# images the DCGAN writes (the paper: 24,000 for Market-1501's 12,936 training images)
_L.LSRO.NUM_GENERATED = 24000
# label assignments of the generated images trained as comparison runs before the main
# (LOSS.LABEL.GENERATED) run, each in OUTPUT_DIR/reid_<mode>, and shown in its final table:
# baseline (real images only) | argmax (pseudo-labels) | lsr (LSR on the pseudo-label)
_L.LSRO.COMPARE = ("baseline",)
# generator steps per discriminator step, on the same noise (DCGAN-tensorflow model.py train:
# "Run g_optim twice to make sure that d_loss does not go to zero"); 1 = the DCGAN paper
_L.LSRO.G_STEPS_PER_D = 2
# the DCGAN stage's length in epochs of the training images, floor(N / GAN.IMS_PER_BATCH)
# iterations each (DCGAN-tensorflow main.py: epoch 25; model.py: batch_idxs = len // batch);
# the stage computes SOLVER.MAX_ITER from the training set and logs it. 0 = GAN.MAX_ITER
_L.LSRO.GAN_EPOCHS = 25
# horizontal-flip probability of the DCGAN stage's real images (DCGAN-tensorflow utils.py
# get_image: resize only, no flip)
_L.LSRO.GAN_FLIP_PROB = 0.0
# the DCGAN stage's data order (its DATALOADER.SHUFFLE): False = the training list's order,
# the same every epoch (DCGAN-tensorflow model.py train reads its glob list in order, never
# shuffled) | True = a fresh permutation every epoch
_L.LSRO.GAN_SHUFFLE = True
# the re-ID optimiser: matconvnet = the authors' per-parameter rates, weight decay and
# classifier init (engine.matconvnet_param_groups; layumi/Person-reID_GAN
# resnet52_market_gan.m, matlab/+dagnn/@DagNN/initParams.m) | staged = backbone at
# SOLVER.REID.BASE_LR, classifier at HEADS_LR_FACTOR x (the shared offline recipe)
_L.LSRO.PARAM_GROUPS = "staged"
# weight of the generated images' loss in the argmax (pseudo-label) comparison run
# (layumi/Person-reID_GAN matlab/+dagnn/Pseudo_Loss.m: instanceWeights 0.1)
_L.LSRO.PSEUDO_WEIGHT = 0.1
# the real-only baseline's own batch, length and decay (the authors' baseline trains 64 real
# images per step for 50 epochs, layumi/Person-reID_GAN train_id_net_res_market_new.m);
# BATCH 0 = the main run's recipe with its real images only; MAX_ITER 0 / STEPS () = the
# main run's
_L.LSRO.BASELINE_BATCH = 0
_L.LSRO.BASELINE_MAX_ITER = 0
_L.LSRO.BASELINE_STEPS = ()


def add_lsro_config(cfg: CN) -> CN:
    """Add the LSRO keys ``cfg`` lacks (and those of the offline pipeline it builds on); its
    engine (``LSROEngine``) and re-ID network (``IDEBaseline``) unless ``cfg`` names others."""
    merge_missing(cfg, _L)
    cfg.MODEL.GEN.NAME = cfg.MODEL.GEN.NAME or "DCGANGenerator"  # the core default is empty
    cfg.MODEL.DIS.NAME = cfg.MODEL.DIS.NAME or "DCGANDiscriminator"
    add_cyclegan_config(cfg)  # the GAN stage node and Adam (2e-4, betas (0.5, 0.999)) of DCGAN
    add_generated_reid_config(cfg)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "LSROEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "IDEBaseline"
    return cfg
