"""Converters from other DG-Net implementations into dgnet_plugin checkpoints."""

from .official import (
    ConversionReport,
    convert_official_dgnet,
    convert_official_teacher,
    default_dgnet_cfg,
    infer_num_classes,
    official_teacher_cfg,
    target_state_dict,
    unwrap_official_state_dict,
)

__all__ = [
    "ConversionReport",
    "convert_official_dgnet",
    "convert_official_teacher",
    "default_dgnet_cfg",
    "infer_num_classes",
    "official_teacher_cfg",
    "target_state_dict",
    "unwrap_official_state_dict",
]
