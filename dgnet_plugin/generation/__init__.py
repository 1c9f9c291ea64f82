"""DG-Net's generator as a tool: code swaps, interpolation, a synthetic training set
(DG-Market style) and the generation-quality measures of the paper (FID, SSIM diversity).

Every function takes a DG-Net-like model (``reid(x, return_all=True)["code"]``,
``gen.encode``, ``gen.decode``; see :mod:`.common`) and ImageNet-normalised images, so a
test can inject a generator whose output is known. ``tools/generate.py`` and
``tools/generation_quality.py`` are the command lines.
"""

from .common import (
    appearance_codes,
    decode,
    list_images,
    load_dgnet,
    load_images,
    structure_codes,
)
from .dataset_writer import (
    MANIFEST,
    MANIFEST_COLUMNS,
    draw_partners,
    generated_name,
    read_manifest,
    write_dataset,
)
from .interpolate import interpolate_appearance, interpolate_structure, save_strip, strip
from .quality import (
    InceptionWeightsError,
    build_inception,
    fid,
    group_generated,
    ssim,
    ssim_diversity,
)
from .swap import save_swap_grid, swap_grid, swap_images

__all__ = [
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "InceptionWeightsError",
    "appearance_codes",
    "build_inception",
    "decode",
    "draw_partners",
    "fid",
    "generated_name",
    "group_generated",
    "interpolate_appearance",
    "interpolate_structure",
    "list_images",
    "load_dgnet",
    "load_images",
    "read_manifest",
    "save_strip",
    "save_swap_grid",
    "ssim",
    "ssim_diversity",
    "strip",
    "structure_codes",
    "swap_grid",
    "swap_images",
    "write_dataset",
]
