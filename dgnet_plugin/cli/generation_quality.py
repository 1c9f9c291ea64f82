"""FID and SSIM diversity of a generated folder, next to the paper's Table 1 numbers.

    python tools/generation_quality.py --generated dg_market/ --real DATA_ROOT \
        [--inception-weights pt_inception-2015-12-05-6726825d.pth] [--device cuda]

--generated: a folder of generated images or the root written by `tools/generate.py dataset`
(its bounding_box_train/ images listed in manifest.csv). --real: a folder of real images or a
Market-layout root (its bounding_box_train/). FID uses pytorch-fid's Inception: the weights
file given by --inception-weights, else pytorch-fid's download (online). SSIM: mean SSIM
between generated images that share an appearance source (higher = more alike; the paper's
diversity column); --real-ssim adds the same measure on the real images grouped by identity.
The paper's values were measured on Market-1501 (256x128, TensorFlow FID); they are printed
for reference and are comparable only for a model trained and generated in that setting.
"""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from dgnet_plugin.evaluation.generation_quality import (
    InceptionWeightsError,
    fid,
    ssim_diversity,
)
from dgnet_plugin.utils.cli import run_cli

#: Zheng et al., CVPR 2019, Table 1 (Market-1501), as reported in the paper (FID, SSIM)
PAPER_TABLE1 = {"Real": (7.22, 0.350), "DG-Net": (18.24, 0.360)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--generated", required=True, help="generated images (folder or root)")
    p.add_argument("--real", required=True, help="real images (folder or Market root)")
    p.add_argument("--inception-weights", default=None, metavar="FILE", help="FID weights file")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--max-pairs", type=int, default=20000, help="SSIM pairs drawn at most")
    p.add_argument("--real-ssim", action="store_true", help="also SSIM of the real images")
    p.add_argument("--no-fid", action="store_true", help="SSIM only (no Inception weights needed)")
    return p


def main(args) -> dict:
    results = {"ssim": ssim_diversity(args.generated, max_pairs=args.max_pairs), "fid": None}
    if not args.no_fid:
        results["fid"] = fid(
            args.generated,
            args.real,
            weights_path=args.inception_weights,
            batch_size=args.batch_size,
            device=args.device,
            num_workers=args.num_workers,
        )
    fid_text = "-" if results["fid"] is None else f"{results['fid']:.2f}"
    rows = [["ours: generated vs real", fid_text, f"{results['ssim']['ssim']:.3f}"]]
    if args.real_ssim:
        results["ssim_real"] = ssim_diversity(args.real, max_pairs=args.max_pairs)
        rows.append(["ours: real (SSIM only)", "-", f"{results['ssim_real']['ssim']:.3f}"])
    for name, (f, s) in PAPER_TABLE1.items():
        rows.append([f"paper Table 1, reported: {name} (Market-1501)", f"{f:.2f}", f"{s:.3f}"])
    headers = ["", "FID (lower is better)", "SSIM"]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    print(
        f"SSIM over {results['ssim']['pairs']} pairs in {results['ssim']['groups']} "
        "appearance groups. The paper rows are the numbers the paper reports, not ours."
    )
    return results


def cli(argv=None) -> int:
    errors = (InceptionWeightsError, ValueError)
    return run_cli(main, build_parser().parse_args(argv), extra_errors=errors)


if __name__ == "__main__":
    sys.exit(cli())
