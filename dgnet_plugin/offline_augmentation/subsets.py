"""Market-layout folders made of symlinks to part of another one, by identity range: how the
cross-domain CPU demos cut two domains out of CUHK03 (its identities come from five camera
pairs in different scenes; ``../shared/data/README.md``)."""

from __future__ import annotations

import json
import os

from ..data.datasets import MARKET_SUBDIRS, DatasetNotFoundError, is_image_name, parse_market_name

DONE = "SUBSET.json"


def write_identity_subset(
    source_root: str, out_root: str, train_pids: tuple[int, int], test_pids: tuple[int, int]
) -> dict:
    """Make ``out_root`` a Market-layout folder of symlinks into ``source_root``:
    ``bounding_box_train/`` = every image of ``source_root`` (any split) whose pid lies in
    ``train_pids`` (inclusive ``(lo, hi)``, Market pids), ``query/`` and
    ``bounding_box_test/`` = the query / gallery images whose pid lies in ``test_pids``.
    Idempotent (existing links are kept); ``SUBSET.json`` records the ranges and counts.
    Returns the counts per split.

    Raises:
        DatasetNotFoundError: ``source_root`` is not a Market layout, or a split is empty.
        ValueError: ranges that overlap (the test identities must be unseen).
    """
    (a, b), (c, d) = (tuple(int(v) for v in r) for r in (train_pids, test_pids))
    if max(a, c) <= min(b, d):
        raise ValueError(f"identity ranges {train_pids} (train) and {test_pids} (test) overlap")
    src = os.path.abspath(source_root)
    wanted = {"bounding_box_train": (a, b), "query": (c, d), "bounding_box_test": (c, d)}
    counts = dict.fromkeys(MARKET_SUBDIRS, 0)
    for split in MARKET_SUBDIRS:
        if not os.path.isdir(os.path.join(src, split)):
            raise DatasetNotFoundError(f"'{src}' has no {split}/: not a Market-layout folder")
        os.makedirs(os.path.join(out_root, split), exist_ok=True)
    for split in MARKET_SUBDIRS:
        for name in sorted(os.listdir(os.path.join(src, split))):
            if not is_image_name(name):
                continue
            pid, _ = parse_market_name(name)
            targets = [s for s, (lo, hi) in wanted.items() if lo <= pid <= hi]
            for t in targets:
                if t != "bounding_box_train" and t != split:
                    continue  # test images keep their split
                dst = os.path.join(out_root, t, name)
                try:
                    os.symlink(os.path.join(src, split, name), dst)
                except FileExistsError:  # an earlier (or a concurrent) run made it
                    pass
                counts[t] += 1
    empty = [s for s, n in counts.items() if n == 0]
    if empty:
        raise DatasetNotFoundError(
            f"the identity subset {out_root} has no images in {', '.join(empty)}: "
            f"pids {train_pids} / {test_pids} are not in '{src}'"
        )
    with open(os.path.join(out_root, DONE), "w") as f:
        json.dump({"source": src, "train_pids": [a, b], "test_pids": [c, d], **counts}, f)
    return counts


def subset_done(out_root: str) -> bool:
    return os.path.isfile(os.path.join(out_root, DONE))
