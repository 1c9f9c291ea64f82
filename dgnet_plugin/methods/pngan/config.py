"""``add_pngan_config``: PN-GAN's keys (Qian et al., ECCV 2018). The generator stage follows
the official code (``naiq/PN_GAN`` ``script/GAN``: a 9-block ResNet generator on the image
concatenated with the target pose, its patch discriminator, LSGAN plus 10 x L1 to the real
image of the same identity in the target pose, Adam 2e-4 (0.5, 0.999), batch 32, 20 epochs of
every ordered same-identity pair with a per-epoch linear decay after 10, 256x128 images); the
re-ID stage is the offline pipeline's
(:func:`~dgnet_plugin.offline_augmentation.config.add_generated_reid_config`) with hard labels on
the pose-normalised images."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing
from ...offline_augmentation.config import (
    add_cyclegan_config,
    add_generated_reid_config,
    add_mask_config,
)

_P = CN()
_P.ENGINE = CN()
_P.ENGINE.NAME = ""  # PNGANEngine (the re-ID stage) unless given
_P.MODEL = CN()
_P.MODEL.META_ARCHITECTURE = ""  # IDEBaseline unless given
_P.MODEL.GEN = CN()
_P.MODEL.GEN.NAME = "ResnetGenerator"  # input: image (3) + pose map (17 + 19) channels
_P.MODEL.GEN.N_BLOCKS = 9
# the released Res_Generator (naiq/PN_GAN script/GAN/network.py): zero padding in the residual
# blocks (reflect = CycleGAN's), a ReLU after each block's addition, no bias in the last 7x7
# conv, PyTorch's default initialisation (train.py calls no init; normal = N(0, 0.02))
_P.MODEL.GEN.RES_PAD = "zeros"
_P.MODEL.GEN.RES_POST_RELU = True
_P.MODEL.GEN.OUT_BIAS = False
_P.MODEL.GEN.INIT = "default"
_P.MODEL.DIS = CN()
# the released Patch_Discriminator (network.py; train.py trains it): PNGANPatchDiscriminator;
# PatchGANDiscriminator = CycleGAN's (padding 1 throughout, N(0, 0.02))
_P.MODEL.DIS.NAME = "PNGANPatchDiscriminator"
_P.LOSS = CN()
_P.LOSS.GAN_MODE = "lsgan"
_P.LOSS.POSE_L1 = 10.0  # L1 to the real image of the identity in the target pose
_P.LOSS.LABEL = CN()
_P.LOSS.LABEL.GENERATED = "hard"  # a pose-normalised image keeps its identity
_P.GAN = CN()  # the generator stage (see offline_augmentation.config.gan_stage_config)
# the generator stage's length in iterations when PNGAN.EPOCHS is 0 (else computed from the
# data: see PNGAN.EPOCHS)
_P.GAN.MAX_ITER = 8000
_P.GAN.DECAY_START = 4000  # linear decay to 0 from here (PNGAN.EPOCHS 0)
_P.GAN.IMS_PER_BATCH = 32
_P.GAN.SIZE = (256, 128)
_P.GAN.PADDING = 0
_P.GAN.CHECKPOINT_PERIOD = 2000
_P.GAN.VIS_PERIOD = 1000
_P.GAN.OUTPUT_SUBDIR = "pose_gan"
_P.GENERATED = CN()
_P.GENERATED.PER_BATCH = 16
_P.POSE = CN()
# keypoints: a CSV of COCO-17 keypoints (file, width, height, <kp>_x/_y/_v) or a TorchScript
# pose model (data.pose.build_keypoint_provider)
_P.POSE.SOURCE = ""
# the generator's pose input: maps = 17 joint heat maps + 19 limb maps (36 channels) | picture
# = the same drawn as one 3-channel skeleton picture in OpenPose's colours (data.pose.
# pose_maps_to_picture), the kind of pose image naiq/PN_GAN's dataset.py reads (6-channel
# generator input)
_P.POSE.FORMAT = "maps"
_P.POSE.SIGMA = 4.0  # heat-map width, in pixels of the generator's images
_P.POSE.LIMB_SIGMA = 2.0  # limb width, likewise
_P.POSE.MIN_VISIBILITY = 0.2  # keypoints below it are missing (drawn as nothing)
_P.POSE.NUM_CANONICAL = 8  # canonical poses: k-means centres of the training poses
_P.POSE.KMEANS_SEED = 0
_P.PNGAN = CN()
# the generator stage's length in released epochs: an epoch is every ordered pair of two
# images of one identity (naiq/PN_GAN script/GAN/dataset.py: itertools.permutations), in
# batches of GAN.IMS_PER_BATCH without the last partial one (train.py: drop_last); MAX_EPOCH
# 20 (script/GAN/config.py). The stage computes SOLVER.MAX_ITER from the training images with
# a pose and logs it (stages.generator_schedule); 0 = GAN.MAX_ITER / GAN.DECAY_START as given
_P.PNGAN.EPOCHS = 20
# the epoch after which the rate decays, once per epoch: 1 - max(0, e - DECAY_EPOCH) /
# DECAY_EPOCH in epoch e (config.py LR_DECAY 10; train.py LambdaLR)
_P.PNGAN.DECAY_EPOCH = 10
# iterations per epoch of pairs, written by the generator stage (0 = per-iteration linear
# decay from GAN.DECAY_START); not set by hand
_P.PNGAN.ITERS_PER_EPOCH = 0
# how the pairs are drawn: permutations = every ordered pair of two images of one identity
# once per epoch, shuffled, no last partial batch (released dataset.py / train.py) | uniform =
# the source uniform over the images, the target uniform among its identity's images
_P.PNGAN.PAIR_SAMPLING = "permutations"
# the image the discriminator takes as real: source (the released train.py: netD(src_img)) |
# target (the real image in the target pose)
_P.PNGAN.DIS_REAL = "source"
# weight of the discriminator loss D_fake + D_real (released train.py: 1; 0.5 = CycleGAN's
# halving)
_P.PNGAN.DIS_LOSS_WEIGHT = 1.0
# training images pose-normalised into the generated set (each in every canonical pose);
# 0 = all of them, N = N images spread evenly over the training list
_P.PNGAN.NUM_SOURCES = 0
# test features in the final table beside the image's own: avg | max | concat (the fused
# pose-normalised features; the released viper_feature.py reports the three),
# original+avg | original+max (the image's feature beside the fused one, concatenated)
_P.PNGAN.TEST_FEATURES = ("original+avg", "original+max", "avg", "max")
# L2-normalise the fused avg / max / concat features again before the ranking; False = the
# released script/viper_feature.py (fused from the normalised views, then squared Euclidean
# distances: set TEST.METRIC euclidean)
_P.PNGAN.FUSED_L2 = True
# the fusion rows on the first N test identities only (query and gallery; 0 = all): each test
# image costs P generator and P + 1 re-ID passes. Add 'original' to TEST_FEATURES for the
# image feature on the same subset
_P.PNGAN.FUSION_TEST_IDS = 0
# fraction of the generator's training pairs whose target is the source image itself, in its
# own pose (drawn per pair and iteration); 0 = the paper (always another image of the
# identity). Under L1 to another image of the identity the average person scores better than
# the source itself (CUHK03 pairs at 64x32: L1 0.32 against 0.40), so a short run learns a
# grey mean figure; self pairs reward passing the source's colours through
_P.PNGAN.SELF_PAIRS = 0.0
# the self-pair fraction at the last generator iteration, reached linearly from SELF_PAIRS
# (a curriculum: copy the source first, then move it); < 0 = SELF_PAIRS throughout
_P.PNGAN.SELF_PAIRS_FINAL = -1.0
# weight of the target's background in the generator's L1 (losses.foreground_weighted_l1_loss:
# w = b + (1 - b) * person mask, masks from MASKS.FOLDER / MASKS.MODEL); 1 = the paper's
# plain L1, 0 = the person alone
_P.PNGAN.BACKGROUND_WEIGHT = 1.0


def add_pngan_config(cfg: CN) -> CN:
    """Add the PN-GAN keys ``cfg`` lacks (and those of the offline pipeline); its engine
    (``PNGANEngine``) and re-ID network (``IDEBaseline``) unless ``cfg`` names others."""
    merge_missing(cfg, _P)
    cfg.MODEL.GEN.NAME = cfg.MODEL.GEN.NAME or "ResnetGenerator"  # the core default is empty
    cfg.MODEL.DIS.NAME = cfg.MODEL.DIS.NAME or "PNGANPatchDiscriminator"
    add_cyclegan_config(cfg)
    add_generated_reid_config(cfg)
    add_mask_config(cfg)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "PNGANEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "IDEBaseline"
    return cfg
