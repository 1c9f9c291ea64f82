"""DG-Net's commands of ``tools/generate.py`` (its ``generation_commands``).

swap: an (N+1) x (N+1) grid; the header row holds the inputs as structure sources, the
header column as appearance sources; cell (i, j) has the appearance of image i and the
structure of image j (the diagonal reconstructs each image).
interpolate: two strips [A, K generated, B]: appearance code A -> B with A's structure, and
structure code A -> B with A's appearance.
dataset: for every training image, K images with its appearance and the structure of random
other training images, in the Market layout (bounding_box_train/ + query/ and
bounding_box_test/ linked from the source) with manifest.csv; resumable (existing files are
skipped). Train on it with DATASETS.ROOT <output-dir> DATASETS.NAMES "('market_layout',)".
Images have the config's INPUT.SIZE_TEST.
"""

from __future__ import annotations

import os

import torch

from ...data.images import list_images, load_images
from ...data.transforms import build_transforms
from .generation import (
    interpolate_appearance,
    interpolate_structure,
    save_strip,
    save_swap_grid,
    write_dataset,
)


def pick_images(sources: list[str], num: int, seed: int) -> list[str]:
    """Files as given; from a single folder, ``num`` images drawn with ``seed`` (sorted)."""
    paths = list_images(sources)
    if len(sources) == 1 and os.path.isdir(sources[0]) and len(paths) > num:
        g = torch.Generator().manual_seed(seed)
        paths = [paths[k] for k in sorted(torch.randperm(len(paths), generator=g)[:num].tolist())]
    return paths


def _swap_args(s) -> None:
    s.add_argument("--images", nargs="+", required=True, help="a folder or image files")
    s.add_argument("--num", type=int, default=8, help="images drawn from a folder (default 8)")
    s.add_argument("--seed", type=int, default=0, help="seed of the draw from a folder")
    s.add_argument("--output", default="swap.jpg", help="the grid file (default swap.jpg)")


def _swap(args, model, cfg) -> dict:
    device = next(model.parameters()).device
    paths = pick_images(args.images, args.num, args.seed)
    x = load_images(paths, build_transforms(cfg, False)).to(device)
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    save_swap_grid(model, x, args.output, mean, std, args.batch_size)
    print(f"wrote {args.output}: {len(paths)} x {len(paths)} swaps of {len(paths)} images")
    return {"output": args.output, "images": paths}


def _interpolate_args(i) -> None:
    i.add_argument("--image-a", required=True)
    i.add_argument("--image-b", required=True)
    i.add_argument("--steps", type=int, default=8, help="generated images per strip")
    i.add_argument("--output-dir", default="interpolation")


def _interpolate(args, model, cfg) -> dict:
    device = next(model.parameters()).device
    tf = build_transforms(cfg, False)
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    x_a, x_b = load_images([args.image_a, args.image_b], tf).to(device)
    stem = [os.path.splitext(os.path.basename(p))[0] for p in (args.image_a, args.image_b)]
    out = {}
    for kind, fn in (("appearance", interpolate_appearance), ("structure", interpolate_structure)):
        path = os.path.join(args.output_dir, f"{kind}_{stem[0]}_{stem[1]}.jpg")
        save_strip(x_a, x_b, fn(model, x_a, x_b, args.steps), path, mean, std)
        out[kind] = path
        print(f"wrote {path}")
    return out


def _dataset_args(d) -> None:
    d.add_argument("--source", required=True, help="Market-layout root (bounding_box_train/)")
    d.add_argument("--output-dir", required=True)
    d.add_argument("--per-image", type=int, default=1, help="K images per training image")
    d.add_argument("--seed", type=int, default=0, help="seed of the structure partners")
    d.add_argument(
        "--test-sets",
        choices=("symlink", "copy", "none"),
        default="symlink",
        help="query/ and bounding_box_test/ of the source: symlink (default), copy or none",
    )
    d.add_argument(
        "--include-real",
        action="store_true",
        help="also symlink the real training images (train on real + generated)",
    )
    d.add_argument("--num-workers", type=int, default=2, help="image-reading threads")


def _dataset(args, model, cfg) -> dict:
    stats = write_dataset(
        model,
        args.source,
        args.output_dir,
        build_transforms(cfg, False),
        cfg.INPUT.PIXEL_MEAN,
        cfg.INPUT.PIXEL_STD,
        per_image=args.per_image,
        seed=args.seed,
        checkpoint=os.path.abspath(args.weights),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        test_sets=args.test_sets,
        include_real=args.include_real,
    )
    print(
        f"{args.output_dir}: {stats['written']} images written, {stats['skipped']} already "
        f"there, {stats['total']} in all; manifest {os.path.join(args.output_dir, 'manifest.csv')}"
    )
    return stats


#: command -> (help, add_arguments(parser), run(args, model, cfg))
GENERATION_COMMANDS = {
    "swap": ("N x N appearance/structure grid", _swap_args, _swap),
    "interpolate": ("code interpolation strips", _interpolate_args, _interpolate),
    "dataset": ("DG-Market-style synthetic set", _dataset_args, _dataset),
}
