"""A DG-Market-style synthetic training set in the Market-1501 layout.

For every training image ``i`` of a Market-layout root (``bounding_box_train/``, junk pid -1
left out) and ``k = 0..K-1``, one image ``G(s_j, f_i)`` with the appearance of ``i`` and the
structure of a random other training image ``j`` is written as

    <out>/bounding_box_train/{pid:04d}_c{cam}s0_{serial:06d}_{k:02d}.jpg

``pid`` and ``cam`` (1-based, as in the source name) are those of the **appearance** image
``i``, ``serial`` is its index in the sorted list of training images, ``k`` the draw. ``s0``
(a sequence number Market-1501 never uses) marks generated images, so their names cannot
collide with real Market names when ``include_real`` links the real images in as well.
Partners ``j != i`` are drawn uniformly with a ``torch.Generator`` seeded by ``seed``, so a
run is reproducible and a resumed run draws the same pairs.

``<out>/manifest.csv`` has one row per generated file: ``file`` (relative to ``<out>``),
``appearance_source``, ``structure_source`` (absolute paths) and ``checkpoint``. ``query/``
and ``bounding_box_test/`` are symlinks to the source's (``test_sets="symlink"``), copies
(``"copy"``) or absent (``"none"``), so that ``MarketLayout(root=out)`` (``DATASETS.ROOT
<out> DATASETS.NAMES ('market_layout',)``) loads the folder directly.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.utils import save_image

from ....data.datasets import DatasetNotFoundError, read_image, scan_market_folder
from ....data.generated import link_test_sets
from ....utils.events import progress_bar
from ....utils.visualization import denormalize
from .common import appearance_codes, decode, model_device, structure_codes

logger = logging.getLogger("dgnet_plugin")

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "appearance_source", "structure_source", "checkpoint")
TRAIN_DIR = "bounding_box_train"


def generated_name(pid: int, cam: int, serial: int, k: int) -> str:
    """``{pid:04d}_c{cam}s0_{serial:06d}_{k:02d}.jpg``; ``cam`` is 1-based."""
    return f"{pid:04d}_c{cam}s0_{serial:06d}_{k:02d}.jpg"


def draw_partners(n: int, per_image: int, seed: int) -> torch.Tensor:
    """``(n, per_image)`` structure partners: for row ``i``, indices uniform over
    ``{0..n-1} \\ {i}``, from a ``torch.Generator`` seeded with ``seed``."""
    if n < 2:
        raise ValueError(f"need at least 2 training images to swap structures, got {n}")
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(0, n - 1, (n, per_image), generator=g)
    return r + (r >= torch.arange(n).view(-1, 1)).long()


def plan(source_root: str, per_image: int, seed: int) -> list[dict]:
    """Every output of :func:`write_dataset` in order: dicts with ``file`` (relative to the
    output root), ``appearance_source`` and ``structure_source`` (absolute paths)."""
    folder = os.path.join(os.path.abspath(source_root), TRAIN_DIR)
    if not os.path.isdir(folder):
        raise DatasetNotFoundError(
            f"no '{TRAIN_DIR}/' in '{source_root}'; pass the root of a Market-layout data set "
            "(holding bounding_box_train/, query/, bounding_box_test/)"
        )
    items = scan_market_folder(folder, relabel=False, drop_junk=True)
    partners = draw_partners(len(items), per_image, seed).tolist()
    out = []
    for i, (path, pid, cam0) in enumerate(items):
        for k, j in enumerate(partners[i]):
            out.append(
                {
                    "file": f"{TRAIN_DIR}/{generated_name(pid, cam0 + 1, i, k)}",
                    "appearance_source": path,
                    "structure_source": items[j][0],
                }
            )
    return out


def read_manifest(path: str) -> list[dict]:
    """The rows of a ``manifest.csv`` (``[]`` when it does not exist)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise ValueError(
                f"'{path}' has columns {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}; "
                "it was not written by the dataset writer: move it away or pick another output"
            )
        return list(reader)


class _PairDataset(Dataset):
    def __init__(self, entries, transform):
        self.entries, self.transform = entries, transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        e = self.entries[i]
        app = self.transform(read_image(e["appearance_source"]))
        return app, self.transform(read_image(e["structure_source"])), i


def _link_real(source_root: str, out: str, generated: set[str]) -> int:
    folder = os.path.join(os.path.abspath(source_root), TRAIN_DIR)
    n = 0
    for path, _, _ in scan_market_folder(folder, relabel=False, drop_junk=True):
        rel = f"{TRAIN_DIR}/{os.path.basename(path)}"
        if rel in generated:
            raise ValueError(
                f"real image '{path}' has the name of a generated image; rename it (generated "
                "images use the sequence number s0)"
            )
        dst = os.path.join(out, rel)
        if not os.path.lexists(dst):
            os.symlink(path, dst)
            n += 1
    return n


@torch.no_grad()
def write_dataset(
    model,
    source_root: str,
    out_dir: str,
    transform,
    mean,
    std,
    per_image: int = 1,
    seed: int = 0,
    checkpoint: str = "",
    batch_size: int = 32,
    num_workers: int = 0,
    test_sets: str = "symlink",
    include_real: bool = False,
    progress: bool = True,
) -> dict:
    """Write the synthetic set described in the module docstring; resumable.

    Args:
        model: a DG-Net-like model in eval mode (its device is used for the batches).
        source_root: a Market-layout root; its ``bounding_box_train/`` gives the sources.
        out_dir: the output root (created).
        transform: PIL image -> ImageNet-normalised ``(3, H, W)`` (the test transform; the
            outputs have the model's input size ``H x W``).
        mean, std: that normalisation, to write ``[0, 1]`` JPEGs.
        per_image: ``K``, generated images per training image.
        seed: seed of the structure partners.
        checkpoint: recorded in the manifest (the weights path).
        test_sets: ``symlink`` / ``copy`` the source's ``query/`` and ``bounding_box_test/``,
            or ``none``.
        include_real: also symlink the real training images into ``bounding_box_train/``
            (train on real + generated with one ``DATASETS.ROOT``).

    Files that already exist are skipped; manifest rows are added only for files that have
    none, so a second identical run writes nothing and leaves the manifest unchanged. Images
    are written to a temporary name and renamed, so an interrupted run leaves no partial JPEG.

    Returns ``{"total", "written", "skipped", "real_linked"}``.

    Raises:
        ValueError: ``out_dir`` holds a manifest written with another checkpoint or seed.
    """
    if per_image < 1:
        raise ValueError(f"per_image (--per-image) must be >= 1, got {per_image}")
    out = os.path.abspath(out_dir)
    os.makedirs(os.path.join(out, TRAIN_DIR), exist_ok=True)
    manifest_path = os.path.join(out, MANIFEST)
    entries = plan(source_root, per_image, seed)
    rows = {r["file"]: r for r in read_manifest(manifest_path)}
    checkpoint = str(checkpoint)
    for e in entries:
        old = rows.get(e["file"])
        if old is None:
            continue
        if old["checkpoint"] != checkpoint or old["structure_source"] != e["structure_source"]:
            raise ValueError(
                f"'{out}' already holds '{e['file']}' generated from checkpoint "
                f"'{old['checkpoint']}' with structure '{old['structure_source']}', but this run "
                f"uses checkpoint '{checkpoint}' and draws '{e['structure_source']}' (another "
                "checkpoint, --seed or source?); write to a new --output-dir"
            )
    link_test_sets(source_root, out, test_sets)
    real_linked = _link_real(source_root, out, {e["file"] for e in entries}) if include_real else 0

    exists = [os.path.exists(os.path.join(out, e["file"])) for e in entries]
    pending = [e for e, done in zip(entries, exists) if not done]
    # files written by an interrupted run after its last manifest update
    orphans = [e for e, done in zip(entries, exists) if done and e["file"] not in rows]
    new_file = not os.path.isfile(manifest_path)
    with open(manifest_path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        if new_file:
            writer.writeheader()

        def record(done):
            for e in done:
                if e["file"] not in rows:
                    rows[e["file"]] = {**e, "checkpoint": checkpoint}
                    writer.writerow(rows[e["file"]])
            f.flush()

        record(orphans)
        device = model_device(model)
        loader = DataLoader(
            _PairDataset(pending, transform), batch_size=batch_size, num_workers=num_workers
        )
        tmp_dir = tempfile.mkdtemp(prefix=".tmp-", dir=out)
        try:
            bar = progress_bar(total=len(pending), desc="generate", disable=not progress)
            for app, struct, idx in loader:
                f_app = appearance_codes(model, app.to(device))
                fake = decode(model, structure_codes(model, struct.to(device)), f_app)
                fake = denormalize(fake, mean, std).cpu()
                done = [pending[i] for i in idx.tolist()]
                for img, e in zip(fake, done):
                    tmp = os.path.join(tmp_dir, os.path.basename(e["file"]))
                    save_image(img, tmp)
                    os.replace(tmp, os.path.join(out, e["file"]))
                record(done)
                bar.update(len(done))
            bar.close()
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    stats = {
        "total": len(entries),
        "written": len(pending),
        "skipped": len(entries) - len(pending),
        "real_linked": real_linked,
    }
    logger.info("Synthetic set in %s: %s", out, stats)
    return stats
