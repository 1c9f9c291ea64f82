"""The package's methods as ``torchreid.engine.Engine`` subclasses: the one place that
uses torchreid's engine API (through :mod:`dgnet_plugin.utils.torchreid_compat`).

- :class:`ImageDGNetEngine` with :func:`build_dgnet` (DG-Net);
- :class:`ImageD2RLEngine` with :func:`build_d2rl` (D2RL, on the plugin's visible-infrared
  torchreid datasets ``sysu_mm01`` / ``regdb``);
- :class:`ImageGeneratedEngine` with :func:`build_generated_reid` and
  :func:`register_generated_dataset` (CamStyle, SPGAN, PTGAN, LSRO, PN-GAN: re-ID on real +
  generated images, each sample with its label rule);
- :mod:`.base`: what an engine of this package shares (checkpoints, evaluation);
- :mod:`.checkpoint`: checkpoints of ``tools/train_net.py`` to torchreid's files and back.

The engine's ``forward_backward`` calls the method's own ``train_step`` (the CLI engine's
step code), so both train the same way. See docs/torchreid.md.
"""

from .checkpoint import cli_to_torchreid, torchreid_to_cli
from .d2rl import ImageD2RLEngine, build_d2rl, build_d2rl_optimizers
from .dgnet import ImageDGNetEngine, TorchreidTeacher, build_dgnet, build_dgnet_optimizers
from .generated import (
    GeneratedImageDataset,
    ImageGeneratedEngine,
    build_generated_reid,
    register_generated_dataset,
)

__all__ = [
    "GeneratedImageDataset",
    "ImageD2RLEngine",
    "ImageGeneratedEngine",
    "ImageDGNetEngine",
    "TorchreidTeacher",
    "build_d2rl",
    "build_d2rl_optimizers",
    "build_dgnet",
    "build_dgnet_optimizers",
    "build_generated_reid",
    "cli_to_torchreid",
    "register_generated_dataset",
    "torchreid_to_cli",
]
