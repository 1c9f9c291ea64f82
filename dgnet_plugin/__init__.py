"""dgnet_plugin: DG-Net and generative person re-ID as a torchreid plugin.

``import dgnet_plugin`` registers, idempotently:

* in torchreid: the ``market_layout`` image dataset (any Market-1501-style folder) and the
  ``dgnet_r50`` / ``dgnet_mobilenetv2`` models of ``torchreid.models.build_model``;
* in the package's own registries: backbones, heads, generators, discriminators,
  meta-architectures and engines, and the methods (``dgnet_plugin.config.METHODS``).
"""

from . import data, engine, losses, methods, modeling  # noqa: F401 (registration side effects)
from .config import get_cfg
from .feature_extractor import FeatureExtractor as FeatureExtractor
from .modeling import build_model

__version__ = "0.1.0"
__all__ = ["get_cfg", "build_model", "__version__"]
