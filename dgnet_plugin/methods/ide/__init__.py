"""IDE: the plain softmax re-ID baseline (Zheng et al.'s ID-discriminative embedding; the
``ft_net`` of Person_reID_baseline_pytorch), and DG-Net's teacher."""

from ...config import Method, register_method
from .config import add_ide_config
from .engine import IDEEngine
from .meta_arch import IDEBaseline

METHOD = register_method(
    Method(
        name="ide",
        title="IDE",
        add_config=add_ide_config,
        engines=("IDEEngine", "TeacherEngine"),
        meta_architectures=("IDEBaseline",),
    )
)

__all__ = ["METHOD", "IDEBaseline", "IDEEngine", "add_ide_config"]
