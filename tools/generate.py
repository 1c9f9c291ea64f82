#!/usr/bin/env python
"""Use a trained DG-Net generator (a checkpoint of tools/train_net.py).

    python tools/generate.py swap --config-file CFG --weights W --images DIR_OR_FILES... \
        [--num 8] --output swap.jpg
    python tools/generate.py interpolate --config-file CFG --weights W \
        --image-a A.jpg --image-b B.jpg [--steps 8] --output-dir interp/
    python tools/generate.py dataset --config-file CFG --weights W \
        --source DATA_ROOT --output-dir dg_market/ [--per-image 1] [--include-real]

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

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import dgnet_plugin  # noqa: E402,F401 (registers everything)
from dgnet_plugin.data.transforms import build_transforms  # noqa: E402
from dgnet_plugin.generation import (  # noqa: E402
    interpolate_appearance,
    interpolate_structure,
    list_images,
    load_dgnet,
    load_images,
    save_strip,
    save_swap_grid,
    write_dataset,
)
from dgnet_plugin.utils.cli import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-file", required=True, metavar="FILE", help="the DG-Net config")
    common.add_argument("--weights", required=True, metavar="FILE", help="model_final.pth")
    common.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    common.add_argument("--batch-size", type=int, default=32, help="images per generator call")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("swap", parents=[common], help="N x N appearance/structure grid")
    s.add_argument("--images", nargs="+", required=True, help="a folder or image files")
    s.add_argument("--num", type=int, default=8, help="images drawn from a folder (default 8)")
    s.add_argument("--seed", type=int, default=0, help="seed of the draw from a folder")
    s.add_argument("--output", default="swap.jpg", help="the grid file (default swap.jpg)")

    i = sub.add_parser("interpolate", parents=[common], help="code interpolation strips")
    i.add_argument("--image-a", required=True)
    i.add_argument("--image-b", required=True)
    i.add_argument("--steps", type=int, default=8, help="generated images per strip")
    i.add_argument("--output-dir", default="interpolation")

    d = sub.add_parser("dataset", parents=[common], help="DG-Market-style synthetic set")
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
    d.add_argument("--num-workers", type=int, default=2, help="image-reading processes")
    return p


def pick_images(sources: list[str], num: int, seed: int) -> list[str]:
    """Files as given; from a single folder, ``num`` images drawn with ``seed`` (sorted)."""
    paths = list_images(sources)
    if len(sources) == 1 and os.path.isdir(sources[0]) and len(paths) > num:
        g = torch.Generator().manual_seed(seed)
        paths = [paths[k] for k in sorted(torch.randperm(len(paths), generator=g)[:num].tolist())]
    return paths


def main(args) -> dict:
    model, cfg = load_dgnet(args.config_file, args.weights, args.device)
    device = next(model.parameters()).device
    tf = build_transforms(cfg, False)
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    if args.command == "swap":
        paths = pick_images(args.images, args.num, args.seed)
        x = load_images(paths, tf).to(device)
        save_swap_grid(model, x, args.output, mean, std, args.batch_size)
        print(f"wrote {args.output}: {len(paths)} x {len(paths)} swaps of {len(paths)} images")
        return {"output": args.output, "images": paths}
    if args.command == "interpolate":
        x_a, x_b = load_images([args.image_a, args.image_b], tf).to(device)
        stem = [os.path.splitext(os.path.basename(p))[0] for p in (args.image_a, args.image_b)]
        out = {}
        for kind, fn in (
            ("appearance", interpolate_appearance),
            ("structure", interpolate_structure),
        ):
            path = os.path.join(args.output_dir, f"{kind}_{stem[0]}_{stem[1]}.jpg")
            save_strip(x_a, x_b, fn(model, x_a, x_b, args.steps), path, mean, std)
            out[kind] = path
            print(f"wrote {path}")
        return out
    stats = write_dataset(
        model,
        args.source,
        args.output_dir,
        tf,
        mean,
        std,
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


def cli(argv=None) -> int:
    # ValueError: the generation tools report bad inputs (mismatched manifest, ...) with it
    return run_cli(main, build_parser().parse_args(argv), extra_errors=(ValueError,))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(cli())
