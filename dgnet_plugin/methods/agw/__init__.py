"""The AGW cross-modality baseline (Ye et al., TPAMI 2021): the standard comparison row for
visible-infrared re-ID (SYSU-MM01, RegDB), trained and evaluated by the same tools as D2RL.

``config`` (``add_agw_config``), ``meta_arch`` (``AGW``: two-stream ResNet-50 / MobileNetV2
with non-local blocks, GeM and BNNeck), ``engine`` (``AGWEngine``: CE + weighted
regularisation triplet). Before training, the visible-infrared data of ``DATASETS.VI_PROXY``
is built (the CUHK03 proxy, the real samples)."""

from ...config import Method, register_method
from ...config.validate import non_negative, one_of
from ...modeling.blocks import NON_LOCAL_AFFINITIES
from ...visible_infrared import ensure_vi_data
from .config import add_agw_config
from .engine import AGWEngine
from .meta_arch import AGW, BN_GAMMA_INITS, IR_INPUTS, NON_LOCAL_POSITIONS

METHOD = register_method(
    Method(
        name="agw",
        title="AGW",
        add_config=add_agw_config,
        engines=("AGWEngine",),
        meta_architectures=("AGW",),
        before_training=ensure_vi_data,
        config_rules=(
            non_negative("SOLVER.WARMUP_ITERS"),
            non_negative("SOLVER.WARMUP_STAGES"),
            non_negative("MODEL.AGW.NON_LOCAL_INTER"),
            one_of("MODEL.AGW.NON_LOCAL_AFFINITY", NON_LOCAL_AFFINITIES),
            one_of("MODEL.AGW.NON_LOCAL_POSITION", NON_LOCAL_POSITIONS),
            one_of("MODEL.AGW.BN_GAMMA_INIT", BN_GAMMA_INITS),
            one_of("MODEL.AGW.IR_INPUT", IR_INPUTS),
        ),
    )
)

__all__ = ["AGW", "METHOD", "AGWEngine", "add_agw_config"]
