"""D2RL's command of ``tools/generate.py`` (its ``generation_commands``).

translate: visible -> infrared (``--direction v2i``) or infrared -> visible (``i2v``) of a
folder or a list of images with a trained checkpoint: every translation is written to
``--output-dir`` under the input's name (PNG; infrared one channel), plus
``grid_<direction>.jpg``: rows real, translated, cycled back (at most ``--grid`` images).
Images are resized to the config's ``INPUT.SIZE_TEST``; visible inputs are read as RGB,
infrared inputs as one channel.
"""

from __future__ import annotations

import os

import torch
from torchvision.utils import save_image

from ...data.cross_modality import MODALITY_MODE
from ...data.datasets import read_image
from ...data.images import list_images
from ...data.sample import INFRARED, VISIBLE
from ...data.transforms import build_transforms
from .engine import save_translation_grid, translation_rows


def _translate_args(p) -> None:
    p.add_argument("--images", nargs="+", required=True, help="a folder or image files")
    p.add_argument(
        "--direction",
        choices=("v2i", "i2v"),
        required=True,
        help="v2i: visible -> infrared; i2v: infrared -> visible",
    )
    p.add_argument("--output-dir", default="translated", help="default: translated/")
    p.add_argument("--grid", type=int, default=8, help="images in the grid (default 8)")


@torch.no_grad()
def translate_folder(
    model, cfg, sources, direction: str, output_dir: str, batch_size=32, grid: int = 8
) -> dict:
    """Translate the images of ``sources`` (module docstring); returns ``{written: [paths],
    grid: path}``."""
    device = next(model.parameters()).device
    model.eval()
    src = VISIBLE if direction == "v2i" else INFRARED
    tf = build_transforms(cfg, False, 3 if src == VISIBLE else 1)
    paths = list_images(sources)
    os.makedirs(output_dir, exist_ok=True)
    written, first = [], None
    for lo in range(0, len(paths), batch_size):
        chunk = paths[lo : lo + batch_size]
        x = torch.stack([tf(read_image(p, MODALITY_MODE[src])) for p in chunk]).to(device)
        if first is None:
            first = x[:grid]
        fake01 = (model.to_gan(model.translate(x)) + 1) / 2
        for p, img in zip(chunk, fake01.clamp(0, 1).cpu()):
            out = os.path.join(output_dir, os.path.splitext(os.path.basename(p))[0] + ".png")
            save_image(img, out)
            written.append(out)
    rows = translation_rows(
        model, first if src == VISIBLE else None, first if src == INFRARED else None
    )
    grid_path = os.path.join(output_dir, f"grid_{direction}.jpg")
    save_translation_grid(rows, grid_path)
    return {"written": written, "grid": grid_path}


def _translate(args, model, cfg) -> dict:
    out = translate_folder(
        model, cfg, args.images, args.direction, args.output_dir, args.batch_size, args.grid
    )
    print(f"wrote {len(out['written'])} translations and {out['grid']} (real, translated, cycled)")
    return out


#: command -> (help, add_arguments(parser), run(args, model, cfg))
GENERATION_COMMANDS = {
    "translate": (
        "visible <-> infrared translation of a folder + grid",
        _translate_args,
        _translate,
    ),
}
