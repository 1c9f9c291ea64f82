"""A DG-Market-style synthetic training set in the Market-1501 layout, written by the core
generated-set writer (:func:`dgnet_plugin.data.generated.write_generated_set`).

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

``<out>/manifest.csv`` is the core generated-set manifest
(:data:`~dgnet_plugin.data.generated.MANIFEST_COLUMNS`), one row per generated file:
``source`` is the appearance image ``i`` (absolute path; ``source_pid``, ``source_camid``
its pid and 1-based camera), ``target`` the structure image ``j`` (absolute path),
``generator`` :data:`GENERATOR` and ``checkpoint`` the weights. ``COMPLETE.json`` marks a
finished set. ``query/`` and ``bounding_box_test/`` are symlinks to the source's
(``test_sets="symlink"``), copies (``"copy"``) or absent (``"none"``), so that
``MarketLayout(root=out)`` (``DATASETS.ROOT <out> DATASETS.NAMES ('market_layout',)``) loads
the folder directly, and :func:`~dgnet_plugin.data.generated.read_generated_set` reads it
with its provenance.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch

from ....data.datasets import DatasetNotFoundError, read_image, scan_market_folder
from ....data.generated import (
    TRAIN_DIR,
    GeneratedSetError,
    generated_file_name,
    link_test_sets,
    write_generated_set,
)
from ....utils.visualization import denormalize
from .common import appearance_codes, decode, model_device, structure_codes

#: the manifest's ``generator`` of DG-Net's swaps
GENERATOR = "dgnet appearance/structure swap"


def draw_partners(n: int, per_image: int, seed: int) -> torch.Tensor:
    """``(n, per_image)`` structure partners: for row ``i``, indices uniform over
    ``{0..n-1} \\ {i}``, from a ``torch.Generator`` seeded with ``seed``."""
    if n < 2:
        raise ValueError(f"need at least 2 training images to swap structures, got {n}")
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(0, n - 1, (n, per_image), generator=g)
    return r + (r >= torch.arange(n).view(-1, 1)).long()


def plan(source_root: str, per_image: int, seed: int) -> list[dict]:
    """Every output of :func:`write_dataset` in order, as entries of the core writer:
    ``file`` (relative to the output root), ``source`` (the appearance image, absolute
    path), ``source_pid``, ``source_camid`` (1-based) and ``target`` (the structure image,
    absolute path)."""
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
                    "file": generated_file_name(pid, cam0 + 1, i, f"{k:02d}"),
                    "source": path,
                    "source_pid": pid,
                    "source_camid": cam0 + 1,
                    "target": items[j][0],
                }
            )
    return out


def swap_translator(model, transform, mean, std, num_workers: int = 0):
    """The ``translate`` callable of the core writer for DG-Net: reads each entry's
    appearance (``source``) and structure (``target``) image with ``transform`` (PIL ->
    ImageNet-normalised ``(3, H, W)``; ``num_workers`` reading threads), returns
    ``G(s_target, f_source)`` as ``(B, 3, H, W)`` in ``[0, 1]`` (``mean``, ``std`` undone)."""
    device = model_device(model)

    def load(path: str) -> torch.Tensor:
        return transform(read_image(path))

    def translate(batch: list[dict]) -> torch.Tensor:
        paths = [e["source"] for e in batch] + [e["target"] for e in batch]
        if num_workers > 0:
            with ThreadPoolExecutor(num_workers) as pool:
                images = list(pool.map(load, paths))
        else:
            images = [load(p) for p in paths]
        x = torch.stack(images).to(device)
        app, struct = x[: len(batch)], x[len(batch) :]
        fake = decode(model, structure_codes(model, struct), appearance_codes(model, app))
        return denormalize(fake, mean, std)

    return translate


def _link_real(source_root: str, out: str, generated: set[str]) -> int:
    folder = os.path.join(os.path.abspath(source_root), TRAIN_DIR)
    n = 0
    for path, _, _ in scan_market_folder(folder, relabel=False, drop_junk=True):
        rel = f"{TRAIN_DIR}/{os.path.basename(path)}"
        if rel in generated:
            raise GeneratedSetError(
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
        num_workers: image-reading threads (0: read in this thread).
        test_sets: ``symlink`` / ``copy`` the source's ``query/`` and ``bounding_box_test/``,
            or ``none``.
        include_real: also symlink the real training images into ``bounding_box_train/``
            (train on real + generated with one ``DATASETS.ROOT``; they get no manifest row).

    Resuming is the core writer's: files that exist are skipped, manifest rows are added only
    for files that have none (a second identical run writes nothing and leaves the manifest
    unchanged), images are written to a temporary name and renamed.

    Returns ``{"total", "written", "skipped", "real_linked"}``.

    Raises:
        ValueError: ``per_image`` < 1.
        GeneratedSetError: ``out_dir`` holds rows written with another checkpoint or seed.
    """
    if per_image < 1:
        raise ValueError(f"per_image (--per-image) must be >= 1, got {per_image}")
    out = os.path.abspath(out_dir)
    entries = plan(source_root, per_image, seed)
    os.makedirs(os.path.join(out, TRAIN_DIR), exist_ok=True)
    link_test_sets(source_root, out, test_sets)
    real_linked = _link_real(source_root, out, {e["file"] for e in entries}) if include_real else 0
    stats = write_generated_set(
        out,
        entries,
        swap_translator(model, transform, mean, std, num_workers),
        GENERATOR,
        checkpoint,
        batch_size,
        progress,
    )
    return {**stats, "real_linked": real_linked}
