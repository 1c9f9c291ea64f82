"""``add_dgnet_config``: DG-Net's keys, with the official Market-1501 recipe as defaults
(``../shared/reference/dgnet.md`` section 2; the comments give the official config name)."""

from __future__ import annotations

from ...config import CfgNode as CN
from ...config import merge_missing, register_renamed_key

_D = CN()
_D.ENGINE = CN()
_D.ENGINE.NAME = ""  # set to DGNetEngine by add_dgnet_config unless given
_D.MODEL = CN()
_D.MODEL.META_ARCHITECTURE = ""  # set to DGNet by add_dgnet_config unless given
_D.MODEL.HEADS = CN()
_D.MODEL.HEADS.FINE_DROPOUT = 0.75  # fine-grained head of Ea
_D.MODEL.HEADS.NUM_PARTS = 4  # stripes of the appearance code (AdaptiveMaxPool2d((4, 1)))
# Ea's forwards in a training step. False (official): one forward per group of images (x_a,
# x_b, their positives, then the erased copies of the four; later x_ba and x_ab), so Ea's
# batch-norm layers see each group's batch statistics and update their running averages
# once per group, as the official trainer's separate id_a calls do. True: one forward on the
# concatenation (faster on GPUs; other batch statistics); see benchmarks/bench_train_step.py.
_D.MODEL.EA_FUSED_FORWARD = False
# Initial weight of Ea's head BatchNorm1d layers: ones (official: reIDmodel.py ClassBlock's
# weights_init_kaiming matches 'InstanceNorm1d' only, so the BatchNorm1d keeps torch's 1) |
# normal (N(1, 0.02), Person_reID_baseline_pytorch's init, the head's own)
_D.MODEL.EA_BN_INIT = "ones"

_D.MODEL.GEN = CN()
_D.MODEL.GEN.NAME = ""  # set to AdaINGen unless given
_D.MODEL.GEN.DIM = 16  # gen.dim
_D.MODEL.GEN.N_DOWNSAMPLE = 2
_D.MODEL.GEN.N_RES = 4
_D.MODEL.GEN.MLP_DIM = 512
_D.MODEL.GEN.MLP_LAYERS = 3
_D.MODEL.GEN.ASPP_DILATIONS = (3, 6, 9)

_D.MODEL.DIS = CN()
_D.MODEL.DIS.NAME = ""  # set to MultiScaleDiscriminator unless given
_D.MODEL.DIS.DIM = 32
_D.MODEL.DIS.N_LAYER = 2
_D.MODEL.DIS.N_RES = 4
_D.MODEL.DIS.NUM_SCALES = 3
_D.MODEL.DIS.GRAD_PENALTY = 0.01  # LAMBDA of the real-image gradient regulariser

_D.MODEL.TEACHER = CN()
_D.MODEL.TEACHER.WEIGHTS = ""  # teacher checkpoint (an IDEBaseline trained by this tool)
_D.MODEL.TEACHER.CONFIG = ""  # config that trains it when WEIGHTS does not exist yet
_D.MODEL.TEACHER.TRAIN_BN = True  # official train_bn: teacher BN uses batch statistics
# Iteration (0-based) from which the teacher's dropout layers are in training mode; <= 0:
# never (a deterministic teacher, the paper's intent). 5000 = the official code: its
# trainer's first sample() (image_display_iter 5000) puts the whole trainer, teacher
# included, back in train mode. That looks accidental upstream, but it is what the released
# model was trained with (the teacher is only used after the 30k warm-up, so there the
# teacher always runs with dropout).
_D.MODEL.TEACHER.DROPOUT_AFTER = 5000
# Not in the paper or the official code (a small-budget option, e.g. the CPU demo): Ea's
# backbone and both heads start from the trained teacher at iteration 0 instead of ImageNet.
_D.MODEL.TEACHER.INIT_EA = False

_D.VIS = CN()
# Iterations between generation measures (self-reconstruction SSIM and swap measures on 128
# held-out queries, written to metrics.json as generation/*); 0 = only at the end of training.
_D.VIS.QUALITY_PERIOD = 0

_D.TEST = CN()
# Query-side weight of the fine-grained half of Ea's feature (reid_eval/test_2label.py alpha;
# -1: the fine half only). evaluate_reid_model gets it through DGNetEngine.query_transform.
_D.TEST.ALPHA = 0.5

_D.LOSS = CN()
_D.LOSS.RECON_X = 5.0  # recon_x_w   L_img1
_D.LOSS.RECON_XP = 5.0  # recon_xp_w  L_img2
_D.LOSS.ID = 1.0  # id_w        L_id^s
_D.LOSS.ID_POS = 1.0  # pid_w: L_id^s on the positive images (was LOSS.PID)
_D.LOSS.RECON_ID = 0.5  # recon_id_w  L_id^c
_D.LOSS.GAN = 1.0  # gan_w       L_adv
_D.LOSS.RECON_CODE_MAX = 1.0  # max_w: recon_f_w and recon_s_w ramp to it
_D.LOSS.CYCLE_MAX = 2.0  # max_cyc_w
_D.LOSS.TEACHER_MAX = 2.0  # max_teacher_w (lambda_prim)
_D.LOSS.FINE = 0.2  # B_w: lambda_fine = FINE * lambda_prim
_D.LOSS.WARM_ITER = 30000  # code-recon and cycle ramps start
_D.LOSS.WARM_TEACHER_ITER = 30000  # teacher ramp starts
_D.LOSS.WARM_SCALE = 0.0005  # ramp increment per iteration
_D.LOSS.STRUCTURE_ENCODER_AGAIN = 0.5  # use_encoder_again
# L_code1 (recon_f) gradient. False (official): Ea detaches its code inside its forward, so
# the frozen copy's code of x_ba is detached too and the term sends no gradient anywhere (it
# is logged only; NVlabs/DG-Net issues #40, #49, #59). True (the paper's intent): the term
# trains G, the AdaIN MLPs and Es through the frozen Ea.
_D.LOSS.RECON_F_GRAD = False


def add_dgnet_config(cfg: CN) -> CN:
    """Add DG-Net's keys (the official recipe) that ``cfg`` does not have yet, and select its
    engine, meta-architecture, generator (``AdaINGen``) and discriminator
    (``MultiScaleDiscriminator``) unless ``cfg`` names others."""
    merge_missing(cfg, _D)
    # [official] configs/latest.yaml: lr_g = lr_d 1e-4, beta1 0, beta2 0.999, weight_decay 5e-4
    solver = cfg.setdefault("SOLVER", CN())
    for name in ("GEN", "DIS"):
        node = solver.setdefault(name, CN())
        node.LR, node.BETAS, node.WEIGHT_DECAY = 1e-4, (0.0, 0.999), 5e-4
    cfg.ENGINE.NAME = cfg.ENGINE.NAME or "DGNetEngine"
    cfg.MODEL.META_ARCHITECTURE = cfg.MODEL.META_ARCHITECTURE or "DGNet"
    cfg.MODEL.GEN.NAME = cfg.MODEL.GEN.NAME or "AdaINGen"
    cfg.MODEL.DIS.NAME = cfg.MODEL.DIS.NAME or "MultiScaleDiscriminator"
    return cfg


register_renamed_key("LOSS.PID", "LOSS.ID_POS")
