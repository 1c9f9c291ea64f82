"""D2RL (Wang et al., "Learning to Reduce Dual-level Discrepancy for Infrared-Visible Person
Re-identification", CVPR 2019; no public code: a reimplementation from the paper).

``config`` (``add_d2rl_config``; every value the paper does not give is marked with its
source), ``meta_arch`` (``D2RL``: the UNIT translator T_I, the two discriminators and the
4-channel re-ID network T_F), ``engine`` (``D2RLEngine``: joint end-to-end training with
optional warm-ups), ``commands`` (``tools/generate.py translate``). Before training, the
visible-infrared data of ``DATASETS.VI_PROXY`` is built (the CUHK03 proxy, the real samples).
"""

from ...config import Method, register_method
from ...config.validate import Rule, non_negative, one_of, positive
from ...visible_infrared import ensure_vi_data
from .commands import GENERATION_COMMANDS
from .config import add_d2rl_config
from .discriminator import UNITDiscriminator
from .engine import TRANSLATION_LATENTS, D2RLEngine
from .meta_arch import D2RL, HEAD_LAYERS, NECKS, feature_choices

METHOD = register_method(
    Method(
        name="d2rl",
        title="D2RL",
        add_config=add_d2rl_config,
        engines=("D2RLEngine",),
        meta_architectures=("D2RL",),
        before_training=ensure_vi_data,
        generation_commands=GENERATION_COMMANDS,
        config_rules=(
            non_negative("MODEL.D2RL.WARMUP_GEN_ITER"),
            non_negative("MODEL.D2RL.WARMUP_REID_ITER"),
            non_negative("SOLVER.WARMUP_ITERS"),
            non_negative("SOLVER.WARMUP_STAGES"),
            one_of("MODEL.D2RL.DIS_FAKES", TRANSLATION_LATENTS),
            one_of("MODEL.D2RL.TF_TRANSLATION", TRANSLATION_LATENTS),
            Rule(
                "MODEL.D2RL.HEADS",
                lambda v, cfg: set(v) <= set(HEAD_LAYERS),
                f"T_F layers among {', '.join(HEAD_LAYERS)}",
            ),
            one_of("MODEL.D2RL.NECK", NECKS),
            Rule(
                "MODEL.D2RL.TEST_FEATURE",
                lambda v, cfg: v in feature_choices(cfg.MODEL.D2RL.NECK),
                "fc | embed, or bn with MODEL.D2RL.NECK bnneck",
            ),
            positive("SOLVER.GEN.LR", integer=False),
            positive("SOLVER.DIS.LR", integer=False),
        ),
    )
)

__all__ = ["METHOD", "D2RL", "D2RLEngine", "UNITDiscriminator", "add_d2rl_config"]
