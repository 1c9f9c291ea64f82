"""``add_d2rl_config``: D2RL's keys and defaults.

The D2RL paper (Wang et al., CVPR 2019) gives the architecture but not its loss weights,
optimisers or schedule. Every default below says where it comes from: [D2RL] the paper,
[UNIT] UNIT's released code and configuration (mingyuliutw/UNIT ``trainer.py``,
``networks.py``, ``configs/unit_edges2handbags_folder.yaml``),
[AGW] the AGW cross-modality baseline (mangye16/Cross-Modal-Re-ID-baseline), [ours] a choice
of this package.
"""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing, register_renamed_key
from ...visible_infrared.config import add_vi_proxy_config

_D = CN()
_D.ENGINE = CN()
_D.ENGINE.NAME = ""  # set to D2RLEngine unless given
_D.MODEL = CN()
_D.MODEL.META_ARCHITECTURE = ""  # set to D2RL unless given
_D.MODEL.GEN = CN()  # MODEL.GEN.NAME: UNITTranslator
_D.MODEL.GEN.DIM = 64  # [UNIT]
_D.MODEL.GEN.N_DOWNSAMPLE = 2  # [UNIT]
_D.MODEL.GEN.N_RES = 4  # [UNIT]
# Residual blocks shared by the two encoders (last) and the two decoders (first): 0 [UNIT code:
# two independent VAEGen, trainer.py UNIT_Trainer.__init__; the shared latent comes from the
# losses]; 1 = the UNIT paper's weight sharing (section 3)
_D.MODEL.GEN.N_SHARED = 0
_D.MODEL.DIS = CN()
# MODEL.DIS.NAME: one per modality, LSGAN. The full recipes name UNITDiscriminator [UNIT:
# networks.py MsImageDis, N_LAYER 4]; unless a config names one, MultiScaleDiscriminator (the
# package's DG-Net-style discriminator, with which the CPU demo was measured) [ours]
_D.MODEL.DIS.DIM = 64  # [UNIT]
_D.MODEL.DIS.N_LAYER = 2  # stride-2 stages (UNITDiscriminator: 4 [UNIT]; MultiScale: 2 [ours])
_D.MODEL.DIS.N_RES = 0  # [ours] MultiScaleDiscriminator only (UNIT's has no residual blocks)
_D.MODEL.DIS.NUM_SCALES = 3  # [UNIT]
_D.MODEL.D2RL = CN()
_D.MODEL.D2RL.FC_DIM = 1024  # [D2RL, unconfirmed] FC-1024
_D.MODEL.D2RL.EMBEDDING_DIM = 128  # [D2RL, unconfirmed] FC-128 (triplet)
# T_F's neck: paper (FC-N_p on the FC-1024 output) [D2RL] | bnneck (batch norm on the FC-128
# triplet embedding, then a bias-free FC-N_p) [ours, after AGW / BoT's BNNeck]
_D.MODEL.D2RL.NECK = "paper"
# test feature: fc (the FC-1024 output, BN + ReLU) | embed (the FC-128 triplet embedding) |
# bn (the batch-normalised embedding; NECK bnneck only) [ours]
_D.MODEL.D2RL.TEST_FEATURE = "fc"
# Training phases: image level only for WARMUP_GEN_ITER iterations, then the feature level
# only (translators fixed) for WARMUP_REID_ITER, then both jointly, end to end [ours: the
# paper trains jointly and gives no warm-up]
_D.MODEL.D2RL.WARMUP_GEN_ITER = 0
_D.MODEL.D2RL.WARMUP_REID_ITER = 0
# T_F's layers trained at SOLVER.REID.HEADS_LR_FACTOR x the backbone's LR (torchreid's
# staged LR; any of fc, embed, bottleneck, classifier) [ours]
_D.MODEL.D2RL.HEADS = ("fc", "embed", "bottleneck", "classifier")
# In the joint phase the re-ID losses reach the translators through the generated channels
# [D2RL]; False detaches them (an ablation) [ours]
_D.MODEL.D2RL.REID_GRAD_TO_GEN = True
# Fakes the discriminators are trained on: sampled [UNIT] (decoded from mu + N(0, I),
# trainer.py dis_update) | mean (decoded from the latent mean)
_D.MODEL.D2RL.DIS_FAKES = "sampled"
# Translations T_F trains on, in its warm-up and in the joint phase: sampled [ours] (decoded
# from mu + N(0, I): in the joint phase, the generator step's own translations, UNIT's
# gen_update) | mean (decoded from the latent mean, as at test, UNIT's forward / sample; an
# extra decode in the joint phase). D2RL does not say; at test T_F always sees the mean's.
_D.MODEL.D2RL.TF_TRANSLATION = "sampled"

_D.SOLVER = CN()
# linear warm-up of T_F's LR over its first WARMUP_ITERS iterations (from the end of
# WARMUP_GEN_ITER) [AGW; ours for D2RL]: Adam with the heads at 10x and no warm-up blew up
# the identity logits in the CPU demo (cross-entropy 8.4 > ln 200 at iteration 120)
_D.SOLVER.WARMUP_ITERS = 0
# Shape of that warm-up: 0 = linear per iteration; n > 0 = n equal constant stages (AGW: 10,
# one per epoch from 0.1 x; see engine.optim.warmup_multistep_factor)
_D.SOLVER.WARMUP_STAGES = 0
# T_F's LR milestones (x SOLVER.REID_GAMMA at each); empty = SOLVER.STEPS (the translators')
_D.SOLVER.REID_STEPS = ()

_D.LOSS = CN()
_D.LOSS.GAN_W = 1.0  # [UNIT code] gan_w
_D.LOSS.RECON_X_W = 10.0  # [UNIT code] recon_x_w (lambda1, self-reconstruction L1)
_D.LOSS.RECON_KL_W = 0.01  # [UNIT code] recon_kl_w (lambda0, VAE KL)
_D.LOSS.RECON_X_CYC_W = 10.0  # [UNIT code] recon_x_cyc_w (cycle L1)
_D.LOSS.RECON_KL_CYC_W = 0.01  # [UNIT code] recon_kl_cyc_w (cycle KL)
_D.LOSS.ID_W = 1.0  # [ours] cross-entropy over the N_p training identities
_D.LOSS.TRIPLET_W = 1.0  # [ours] batch-hard triplet on the FC-128 embedding
_D.LOSS.TRIPLET_MARGIN = 0.3  # [ours, torchreid default]


def add_d2rl_config(cfg: CN) -> CN:
    """Add the D2RL keys that ``cfg`` does not have yet; its engine and meta-architecture
    unless ``cfg`` names others."""
    merge_missing(cfg, _D)
    add_vi_proxy_config(cfg)
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "D2RLEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "D2RL"
    # core keys with D2RL's values (a config file given afterwards still overrides them)
    cfg.MODEL.BACKBONE.IN_CHANNELS = 4  # [D2RL] the multi-spectral [RGB; IR] input
    cfg.MODEL.GEN.NAME = cfg.MODEL.GEN.NAME or "UNITTranslator"
    cfg.MODEL.DIS.NAME = cfg.MODEL.DIS.NAME or "MultiScaleDiscriminator"
    for node in (cfg.SOLVER.GEN, cfg.SOLVER.DIS):  # [UNIT] Adam 1e-4, (0.5, 0.999), wd 1e-4
        node.LR, node.BETAS, node.WEIGHT_DECAY = 1e-4, (0.5, 0.999), 1e-4
    return cfg


register_renamed_key("MODEL.D2RL.EMBED_DIM", "MODEL.D2RL.EMBEDDING_DIM")
