"""DG-Net's generator as a tool: code swaps, interpolation and a synthetic training set
(DG-Market style). The generation-quality measures (FID, SSIM) are method-agnostic and live
in :mod:`dgnet_plugin.evaluation.generation_quality`.

Every function takes a DG-Net-like model (``reid(x, return_all=True)["code"]``,
``gen.encode``, ``gen.decode``; see :mod:`.common`) and ImageNet-normalised images, so a
test can inject a generator whose output is known. ``tools/generate.py`` is the command line
(its commands are this method's ``generation_commands``).
"""

from .common import (
    appearance_codes,
    decode,
    load_dgnet,
    structure_codes,
)
from .dataset_writer import GENERATOR, draw_partners, plan, swap_translator, write_dataset
from .interpolate import interpolate_appearance, interpolate_structure, save_strip, strip
from .swap import save_swap_grid, swap_grid, swap_images

__all__ = [
    "GENERATOR",
    "appearance_codes",
    "decode",
    "draw_partners",
    "interpolate_appearance",
    "interpolate_structure",
    "load_dgnet",
    "plan",
    "save_strip",
    "save_swap_grid",
    "strip",
    "structure_codes",
    "swap_grid",
    "swap_images",
    "swap_translator",
    "write_dataset",
]
