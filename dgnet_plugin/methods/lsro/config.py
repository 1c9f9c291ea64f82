"""``add_lsro_config``: LSRO's keys (Zheng et al., ICCV 2017). The DCGAN stage's values follow
DCGAN (Radford et al. 2016: Adam 2e-4, beta1 0.5, batch 64 (128 in the paper), BCE loss, N(0,
0.02) init) and LSRO (100-d noise, generated pedestrians; output 128x64 here, as the issue
asks, where the authors' DCGAN-tensorflow fork drew 128x128 and resized them); the re-ID stage
is the offline pipeline's (:func:`~dgnet_plugin.config.offline.add_generated_reid_config`)
with LSRO's uniform label on the generated images."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...config.offline import add_cyclegan_config, add_generated_reid_config

_L = CN()
_L.ENGINE = CN()
_L.ENGINE.NAME = ""  # LSROEngine (the re-ID stage) unless given
_L.MODEL = CN()
_L.MODEL.META_ARCHITECTURE = ""  # IDEBaseline unless given
_L.MODEL.GEN = CN()
_L.MODEL.GEN.NAME = "DCGANGenerator"
_L.MODEL.GEN.Z_DIM = 100  # LSRO / DCGAN: 100-d uniform or Gaussian noise (Gaussian here)
_L.MODEL.GEN.DIM = 64  # width of the last transposed convolution (DCGAN's ngf)
_L.MODEL.DIS = CN()
_L.MODEL.DIS.NAME = "DCGANDiscriminator"
_L.MODEL.DIS.DIM = 64  # width of the first convolution (ndf)
_L.LOSS = CN()
_L.LOSS.GAN_MODE = "vanilla"  # DCGAN's BCE adversarial loss
_L.LOSS.LABEL = CN()
_L.LOSS.LABEL.GENERATED = "lsro"  # uniform over the K identities (Eq. 4)
_L.GAN = CN()  # the DCGAN stage (see config.offline.gan_stage_opts)
_L.GAN.MAX_ITER = 30000  # about 150 epochs of Market's 12,936 images at batch 64
_L.GAN.DECAY_START = 30000  # DCGAN: constant learning rate (no decay)
_L.GAN.IMS_PER_BATCH = 64
_L.GAN.SIZE = (128, 64)  # (H, W) the DCGAN generates
_L.GAN.PADDING = 0  # no pad-and-crop: whole resized pedestrians
_L.GAN.CHECKPOINT_PERIOD = 5000
_L.GAN.VIS_PERIOD = 1000
_L.GAN.OUTPUT_SUBDIR = "dcgan"
_L.GENERATED = CN()
_L.GENERATED.PER_BATCH = 32  # generated images per step beside DATALOADER.IMS_PER_BATCH real
_L.LSRO = CN()
# images the DCGAN writes (the paper: 24,000 for Market-1501's 12,936 training images)
_L.LSRO.NUM_GENERATED = 24000
# label assignments of the generated images trained as comparison runs before the main
# (LOSS.LABEL.GENERATED) run, each in OUTPUT_DIR/reid_<mode>, and shown in its final table:
# baseline (real images only) | argmax (pseudo-labels) | lsr (LSR on the pseudo-label)
_L.LSRO.COMPARE = ("baseline",)


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
