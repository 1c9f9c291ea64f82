"""DG-Net (Zheng et al., "Joint Discriminative and Generative Learning for Person
Re-identification", CVPR 2019): everything the method owns.

``config`` (``add_dgnet_config``), ``appearance`` (Ea), ``generator`` (Es + G + AdaIN MLPs),
``meta_arch`` (``DGNet``: the three steps' forward and losses), ``schedule`` (loss weights and
warm-up), ``engine`` (``DGNetEngine``), ``teacher`` (its IDE teacher), ``generation`` (swaps,
interpolation, a DG-Market-style dataset) and ``commands`` (``tools/generate.py``),
``convert`` (official checkpoints), ``torchreid_models`` (Ea in ``torchreid.models``).
"""

from ...config import Method, register_method
from ...config.validate import less_than, non_negative, one_of, positive
from .appearance import EA_BN_INITS, AppearanceEncoder
from .commands import GENERATION_COMMANDS
from .config import add_dgnet_config
from .engine import DGNetEngine
from .meta_arch import DGNet
from .teacher import dgnet_stages
from .torchreid_models import register_torchreid_models, torchreid_export

register_torchreid_models()

METHOD = register_method(
    Method(
        name="dgnet",
        title="DG-Net",
        add_config=add_dgnet_config,
        engines=("DGNetEngine",),
        meta_architectures=("DGNet",),
        stages=dgnet_stages,
        generation_commands=GENERATION_COMMANDS,
        export=torchreid_export,
        config_rules=(
            non_negative("LOSS.WARM_ITER"),
            less_than("LOSS.WARM_ITER", "SOLVER.MAX_ITER", what="the warm-up"),
            less_than("LOSS.WARM_TEACHER_ITER", "SOLVER.MAX_ITER", what="the teacher warm-up"),
            positive("SOLVER.GEN.LR", integer=False),
            positive("SOLVER.DIS.LR", integer=False),
            one_of("MODEL.EA_BN_INIT", EA_BN_INITS),
        ),
    )
)

__all__ = ["METHOD", "AppearanceEncoder", "DGNet", "DGNetEngine", "add_dgnet_config"]
