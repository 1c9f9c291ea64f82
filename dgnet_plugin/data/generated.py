"""Generated image sets with provenance: the writer of the offline pipeline's generation
stage, the reader that loads such a folder as training data, and the loader of real +
generated batches.

A generated set is a Market-layout folder (so ``market_layout@<folder>`` loads it too)::

    <root>/bounding_box_train/<pid:04d>_c<cam>s0_<serial:06d>_<tag>.jpg
    <root>/manifest.csv        one row per image (MANIFEST_COLUMNS)
    <root>/COMPLETE.json       written when every planned image is there
    <root>/query, bounding_box_test   optional links to the source's test sets

``s0`` (a sequence number Market-1501 never uses) marks generated images. ``manifest.csv``
columns: ``file`` (relative to the root), ``source`` (the image translated, absolute path;
empty for an unconditional generator), ``source_pid`` (its Market pid, -1 = no identity),
``source_camid`` (its camera, 1-based as in Market names), ``target`` (the camera, domain or
pose it was translated to, e.g. ``c2``, ``target``, ``pose3``; for DG-Net the absolute path of
the image whose structure it took), ``generator`` (what made it, e.g. ``cyclegan c1->c2``)
and ``checkpoint`` (the weights file).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence

import torch
from torchvision.utils import save_image

from ..errors import UserError
from ..utils.events import progress_bar
from .datasets import DatasetNotFoundError, parse_market_name
from .sample import GENERATED

logger = logging.getLogger("dgnet_plugin")

MANIFEST = "manifest.csv"
COMPLETE = "COMPLETE.json"
TRAIN_DIR = "bounding_box_train"
TEST_DIRS = ("query", "bounding_box_test")
MANIFEST_COLUMNS = (
    "file",
    "source",
    "source_pid",
    "source_camid",
    "target",
    "generator",
    "checkpoint",
)


class GeneratedSetError(UserError, ValueError):
    """A generated set that cannot be written or read as asked (another generator's folder,
    a missing image, an identity the real training set does not have)."""


def generated_file_name(pid: int, cam: int, serial: int, tag: str | int) -> str:
    """``{pid:04d}_c{cam}s0_{serial:06d}_{tag}.jpg`` (``cam`` 1-based; ``tag`` e.g. the
    target camera ``c2`` or the draw ``03``), under ``bounding_box_train/``."""
    return f"{TRAIN_DIR}/{pid:04d}_c{cam}s0_{serial:06d}_{tag}.jpg"


def read_manifest(root: str) -> list[dict]:
    """The rows of ``<root>/manifest.csv`` (``[]`` when there is none).

    Raises:
        GeneratedSetError: the file has other columns (not written by this writer).
    """
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise GeneratedSetError(
                f"'{path}' has columns {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}; "
                "it was not written by dgnet_plugin.data.generated: move it away or choose "
                "another folder"
            )
        return list(reader)


def is_complete(root: str) -> bool:
    """Whether ``root`` holds a finished generated set (``COMPLETE.json``)."""
    return os.path.isfile(os.path.join(root, COMPLETE))


def link_test_sets(source_root: str, out: str, mode: str = "symlink") -> None:
    """Make ``out`` a full Market layout: ``query/`` and ``bounding_box_test/`` of
    ``source_root`` as symlinks (``symlink``), copies (``copy``), or not at all (``none``).
    Existing entries are kept. Raises :class:`DatasetNotFoundError` when the source lacks one.
    """
    if mode not in ("symlink", "copy", "none"):
        raise ValueError(f"test set mode must be 'symlink', 'copy' or 'none', got '{mode}'")
    if mode == "none":
        return
    for name in TEST_DIRS:
        src, dst = os.path.join(os.path.abspath(source_root), name), os.path.join(out, name)
        if os.path.lexists(dst):
            continue
        if not os.path.isdir(src):
            raise DatasetNotFoundError(
                f"'{src}' does not exist, so it cannot be linked into '{out}'; use the test set "
                "mode 'none' (--test-sets none) and add query/ and bounding_box_test/ yourself"
            )
        if mode == "symlink":
            os.symlink(src, dst, target_is_directory=True)
        else:
            shutil.copytree(src, dst)


@torch.no_grad()
def write_generated_set(
    out_dir: str,
    entries: Sequence[dict],
    translate: Callable[[list[dict]], torch.Tensor],
    generator: str,
    checkpoint: str = "",
    batch_size: int = 32,
    progress: bool = True,
) -> dict:
    """Write every planned image of ``entries`` into the generated set ``out_dir``; resumable.

    Args:
        entries: the plan, in order: dicts with ``file`` (relative path, see
            :func:`generated_file_name`), ``source``, ``source_pid``, ``source_camid``,
            ``target``. The same plan must be passed again to continue a run.
        translate: ``f(batch of entries) -> (B, C, H, W)`` images in ``[0, 1]`` (the method
            reads the sources and runs its generator; called under ``torch.no_grad``).
        generator, checkpoint: provenance written to every row (which model, which weights);
            an entry's own ``generator`` / ``checkpoint`` keys win (one model per camera
            pair, CamStyle). Other keys of an entry are not written.
        batch_size: entries per ``translate`` call.

    Files that exist and have a manifest row are skipped; a file written by an interrupted
    run after its last manifest update gets its row; a listed file that was lost is written
    again without a second row; each image is written to a temporary
    name and renamed, so no partial JPEG is left. When every entry is there, ``COMPLETE.json``
    is written. Returns ``{"total", "written", "skipped"}``.

    Raises:
        GeneratedSetError: ``out_dir`` holds rows of another generator or checkpoint (or
            another source or target for the same file): write to a new folder.
    """
    out = os.path.abspath(out_dir)
    os.makedirs(os.path.join(out, TRAIN_DIR), exist_ok=True)
    rows = {r["file"]: r for r in read_manifest(out)}
    checkpoint = str(checkpoint)
    for e in entries:
        old = rows.get(e["file"])
        gen_e, ckpt_e = str(e.get("generator", generator)), str(e.get("checkpoint", checkpoint))
        src_e, tgt_e = str(e.get("source", "")), str(e.get("target", ""))
        if old is not None and (gen_e, ckpt_e, src_e, tgt_e) != tuple(
            old[c] for c in ("generator", "checkpoint", "source", "target")
        ):
            raise GeneratedSetError(
                f"'{out}' already holds '{e['file']}' from generator '{old['generator']}', "
                f"checkpoint '{old['checkpoint']}', source '{old['source']}', target "
                f"'{old['target']}'; this run uses '{gen_e}', '{ckpt_e}', '{src_e}', '{tgt_e}' "
                "(another generator, checkpoint, seed or source?): write to a new folder"
            )
    exists = [os.path.exists(os.path.join(out, e["file"])) for e in entries]
    pending = [e for e, done in zip(entries, exists) if not done]
    orphans = [e for e, done in zip(entries, exists) if done and e["file"] not in rows]
    path = os.path.join(out, MANIFEST)
    new_file = not os.path.isfile(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        if new_file:
            writer.writeheader()

        def record(done):
            for e in done:
                if e["file"] in rows:  # rewritten after a loss: its row is there already
                    continue
                row = {c: str(e.get(c, "")) for c in MANIFEST_COLUMNS[:5]}
                row["generator"] = str(e.get("generator", generator))
                row["checkpoint"] = str(e.get("checkpoint", checkpoint))
                rows[e["file"]] = row
                writer.writerow(row)
            f.flush()

        record(orphans)
        tmp_dir = tempfile.mkdtemp(prefix=".tmp-", dir=out)
        try:
            bar = progress_bar(total=len(pending), desc="generate", disable=not progress)
            for lo in range(0, len(pending), batch_size):
                batch = list(pending[lo : lo + batch_size])
                images = translate(batch).detach().float().cpu()
                if images.shape[0] != len(batch):
                    raise ValueError(
                        f"translate returned {images.shape[0]} images for {len(batch)} entries"
                    )
                for img, e in zip(images, batch):
                    tmp = os.path.join(tmp_dir, os.path.basename(e["file"]))
                    save_image(img.clamp(0, 1), tmp)
                    os.replace(tmp, os.path.join(out, e["file"]))
                record(batch)
                bar.update(len(batch))
            bar.close()
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    stats = {"total": len(entries), "written": len(pending), "skipped": len(entries) - len(pending)}
    with open(os.path.join(out, COMPLETE), "w") as f:
        json.dump({**stats, "generator": generator, "checkpoint": checkpoint}, f)
    logger.info("Generated set %s: %s", out, stats)
    return stats


def read_generated_set(root: str, require_complete: bool = True) -> list[dict]:
    """The images of the generated set ``root`` as sample dicts with their provenance:
    ``impath`` (absolute), ``pid`` (the source's Market pid, -1 = none), ``camid`` (0-based,
    from the file name), ``generated`` (True), and ``source``, ``source_camid`` (1-based),
    ``target``, ``generator``, ``checkpoint`` from the manifest.

    Raises:
        DatasetNotFoundError: no ``manifest.csv`` (or, with ``require_complete``, no
            ``COMPLETE.json``: the generation stage was interrupted; rerun it).
        GeneratedSetError: a listed image is missing.
    """
    root = os.path.abspath(root)
    rows = read_manifest(root)
    if not rows or (require_complete and not is_complete(root)):
        raise DatasetNotFoundError(
            f"'{root}' is not a finished generated set (manifest.csv with rows and "
            f"COMPLETE.json); run the generation stage (tools/train_net.py --stage generate)"
        )
    out = []
    for r in rows:
        path = os.path.join(root, r["file"])
        if not os.path.isfile(path):
            raise GeneratedSetError(f"'{path}' is listed in {MANIFEST} but missing; rerun the "
                                    "generation stage (it writes the missing images)")  # fmt: skip
        _, cam = parse_market_name(path)
        out.append(
            {
                "impath": path,
                "pid": int(r["source_pid"]),
                "camid": cam - 1,
                GENERATED: True,
                "source": r["source"],
                "source_camid": int(r["source_camid"]) if r["source_camid"] else -1,
                "target": r["target"],
                "generator": r["generator"],
                "checkpoint": r["checkpoint"],
            }
        )
    return out
