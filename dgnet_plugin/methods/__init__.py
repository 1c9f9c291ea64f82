"""Method packages: one folder per method, built from the shared parts of the core.

Adding a method is a folder ``methods/<name>/`` (its ``add_<name>_config``, meta-architecture,
engine, losses' weighting, generation) that registers a
:class:`~dgnet_plugin.config.method.Method`, plus one import line here.
"""

from . import (
    agw,  # noqa: F401 (registers the AGW cross-modality baseline)
    camstyle,  # noqa: F401 (registers CamStyle)
    d2rl,  # noqa: F401 (registers D2RL)
    dgnet,  # noqa: F401 (registers DG-Net)
    ide,  # noqa: F401 (registers the IDE baseline)
    lsro,  # noqa: F401 (registers LSRO)
    pngan,  # noqa: F401 (registers PN-GAN)
    ptgan,  # noqa: F401 (registers PTGAN)
    spgan,  # noqa: F401 (registers SPGAN)
)
