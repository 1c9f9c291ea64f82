"""A report on a Market-layout dataset before training: what is there, what is skipped, why.

:func:`scan_market_folder_report` lists the three split folders the way
:class:`~dgnet_plugin.data.datasets.MarketLayout` reads them (same file selection, same name
parsing) but never raises on a bad file: it counts images, identities and cameras per split,
and collects files that are skipped (not an image, unparsable name, hidden, a folder),
images smaller than a minimum size, unreadable images, and queries without a true match in
the gallery (an image of the same identity from another camera: such a query cannot score,
and is ignored by the Market-1501 protocol). :meth:`DatasetScan.format` gives the log text.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

from PIL import Image

from ..utils.checkpoint import atomic_write_text
from ..utils.events import progress_bar
from .datasets import (
    IMAGE_EXTENSIONS,
    MARKET_SUBDIRS,
    DatasetNotFoundError,
    is_image_name,
    market_layout_help,
    parse_market_name,
)

#: Bump when the content of a scan changes, so older cache files are ignored.
SCAN_VERSION = 1
#: Smallest (height, width) not reported as too small.
DEFAULT_MIN_SIZE = (16, 8)


@dataclass
class SplitCounts:
    """Counts of one split folder: readable image files with a Market name, their identities
    (distinct pids other than -1) and cameras, and how many are junk (pid -1; dropped from
    training) and distractors (pid 0)."""

    images: int = 0
    identities: int = 0
    cameras: int = 0
    junk: int = 0
    distractors: int = 0


@dataclass
class DatasetScan:
    """The result of :func:`scan_market_folder_report` (paths are absolute).

    Attributes:
        counts: per split folder name (``bounding_box_train``, ``query``,
            ``bounding_box_test``).
        skipped: ``(path, reason)`` of files the loader does not use or cannot label.
        unreadable: ``(path, reason)`` of image files that cannot be opened (the loader
            would stop on them).
        too_small: ``(path, width, height)`` of images below ``min_size``.
        unmatched_queries: query paths whose identity has no gallery image from another
            camera.
        decoded: whether every image was fully decoded (else only headers were read).
        from_cache: whether this scan was read from the cache file.
    """

    root: str
    min_size: tuple[int, int]
    decoded: bool
    counts: dict[str, SplitCounts] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    too_small: list[tuple[str, int, int]] = field(default_factory=list)
    unmatched_queries: list[str] = field(default_factory=list)
    from_cache: bool = False

    @property
    def clean(self) -> bool:
        """No skipped, unreadable or too-small file and every query has a true match."""
        return not (self.skipped or self.unreadable or self.too_small or self.unmatched_queries)

    def format(self, max_examples: int = 5) -> str:
        """Multi-line text for the log: one count line per split, then each kind of problem
        with its number and up to ``max_examples`` examples."""
        lines = [f"dataset scan of {self.root}" + (" (cached)" if self.from_cache else "")]
        for split, c in self.counts.items():
            extra = ""
            if c.junk:
                dropped = ", dropped from training" if split == MARKET_SUBDIRS[0] else ""
                extra += f", {c.junk} junk (pid -1{dropped})"
            if c.distractors:
                extra += f", {c.distractors} distractors (pid 0)"
            lines.append(
                f"  {split}: {c.images} images, {c.identities} identities, "
                f"{c.cameras} cameras{extra}"
            )
        h, w = self.min_size

        def section(title: str, rows: list[str]) -> None:
            if not rows:
                return
            lines.append(f"  {title}: {len(rows)}")
            lines.extend(f"    {r}" for r in rows[:max_examples])
            if len(rows) > max_examples:
                lines.append(f"    ... and {len(rows) - max_examples} more")

        section("skipped files", [f"{p}: {why}" for p, why in self.skipped])
        section(
            "unreadable images (training stops on them; delete or replace them)",
            [f"{p}: {why}" for p, why in self.unreadable],
        )
        section(
            f"images smaller than {h}x{w} (HxW)",
            [f"{p}: {ht}x{wd}" for p, wd, ht in self.too_small],
        )
        section(
            "queries without a gallery image of the same identity from another camera "
            "(they cannot score)",
            self.unmatched_queries,
        )
        if self.clean:
            lines.append("  no problems found")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("from_cache")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetScan:
        return cls(
            root=d["root"],
            min_size=tuple(d["min_size"]),
            decoded=d["decoded"],
            counts={k: SplitCounts(**v) for k, v in d["counts"].items()},
            skipped=[tuple(x) for x in d["skipped"]],
            unreadable=[tuple(x) for x in d["unreadable"]],
            too_small=[tuple(x) for x in d["too_small"]],
            unmatched_queries=list(d["unmatched_queries"]),
        )


def _list_split(folder: str) -> tuple[list[tuple[str, os.stat_result]], list[tuple[str, str]]]:
    """Image files of ``folder`` with their stat, and skipped entries with the reason."""
    images, skipped = [], []
    accepted = "/".join(IMAGE_EXTENSIONS)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = entry.path
        if entry.name.startswith("."):
            skipped.append((path, "hidden file (names starting with '.' are not read)"))
        elif entry.is_dir():
            skipped.append((path, "a folder (sub-folders are not read)"))
        elif not is_image_name(entry.name):
            ext = os.path.splitext(entry.name)[1] or "none"
            skipped.append((path, f"not an image (extension {ext}; accepted {accepted}, any case)"))
        else:
            try:
                images.append((path, entry.stat()))
            except OSError as e:  # a dangling symlink
                skipped.append((path, f"cannot be read ({e.strerror or e})"))
    return images, skipped


def _cache_key(files: list[tuple[str, os.stat_result]], min_size, decode: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([SCAN_VERSION, list(min_size), decode]).encode())
    for path, st in files:
        h.update(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return h.hexdigest()


def scan_market_folder_report(
    root: str,
    min_size: tuple[int, int] = DEFAULT_MIN_SIZE,
    decode: bool = False,
    cache_path: str | None = None,
    show_progress: bool = True,
) -> DatasetScan:
    """Scan the Market-layout folder ``root`` (see the module docstring); never raises on a
    bad file, it reports it.

    Args:
        min_size: ``(height, width)``; smaller images are reported.
        decode: fully decode every image (finds truncated files; slower) instead of reading
            only the headers.
        cache_path: a JSON file (e.g. ``OUTPUT_DIR/dataset_scan.json``) holding the last
            scan, reused when the list of files, their modification times and sizes,
            ``min_size`` and ``decode`` are unchanged; rewritten otherwise.
        show_progress: a progress bar over the images (``progress_bar``).

    Raises:
        DatasetNotFoundError: ``root`` lacks one of the three split folders.
    """
    root = os.path.abspath(os.path.expanduser(root))
    missing = [d for d in MARKET_SUBDIRS if not os.path.isdir(os.path.join(root, d))]
    if missing:
        raise DatasetNotFoundError(
            f"missing {', '.join(missing)} in '{root}'; " + market_layout_help(root)
        )
    min_size = (int(min_size[0]), int(min_size[1]))
    listed = {d: _list_split(os.path.join(root, d)) for d in MARKET_SUBDIRS}
    all_files = [f for d in MARKET_SUBDIRS for f in listed[d][0]]
    key = _cache_key(all_files, min_size, decode)
    cached = _read_cache(cache_path, key)
    if cached is not None:
        return cached

    scan = DatasetScan(root=root, min_size=min_size, decoded=decode)
    labels: dict[str, list[tuple[str, int, int]]] = {}
    bar = progress_bar(
        total=len(all_files), desc="dataset scan", unit="img", disable=not show_progress
    )
    try:
        for split in MARKET_SUBDIRS:
            files, skipped = listed[split]
            scan.skipped += skipped
            labels[split] = []
            for path, _ in files:
                bar.update(1)
                try:
                    pid, cam = parse_market_name(path)
                except ValueError:
                    scan.skipped.append(
                        (path, "name does not follow the Market-1501 naming '<pid>_c<cam>...'")
                    )
                    continue
                problem = _check_image(path, min_size, decode)
                if isinstance(problem, str):
                    scan.unreadable.append((path, problem))
                    continue
                if problem is not None:
                    scan.too_small.append((path, *problem))
                labels[split].append((path, pid, cam))
    finally:
        bar.close()

    for split, items in labels.items():
        pids = {pid for _, pid, _ in items}
        scan.counts[split] = SplitCounts(
            images=len(items),
            identities=len(pids - {-1}),
            cameras=len({cam for _, _, cam in items}),
            junk=sum(pid == -1 for _, pid, _ in items),
            distractors=sum(pid == 0 for _, pid, _ in items),
        )
    gallery_cams: dict[int, set[int]] = {}
    for _, pid, cam in labels["bounding_box_test"]:
        gallery_cams.setdefault(pid, set()).add(cam)
    scan.unmatched_queries = [
        path for path, pid, cam in labels["query"] if not gallery_cams.get(pid, set()) - {cam}
    ]
    _write_cache(cache_path, key, scan)
    return scan


def _check_image(path: str, min_size: tuple[int, int], decode: bool):
    """``None`` (fine), ``(width, height)`` when too small, or a reason string when it
    cannot be read."""
    try:
        with Image.open(path) as img:
            if decode:
                img.load()
            w, h = img.size
    except Exception as e:  # PIL raises many types on bad files
        return f"{type(e).__name__}: {e}"
    if h < min_size[0] or w < min_size[1]:
        return (w, h)
    return None


def _read_cache(cache_path: str | None, key: str) -> DatasetScan | None:
    if not cache_path or not os.path.isfile(cache_path):
        return None
    try:
        with open(cache_path) as f:
            data = json.load(f)
        if data.get("key") != key:
            return None
        scan = DatasetScan.from_dict(data["scan"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache is only a cache: scan again
    scan.from_cache = True
    return scan


def _write_cache(cache_path: str | None, key: str, scan: DatasetScan) -> None:
    if not cache_path:
        return
    folder = os.path.dirname(os.path.abspath(cache_path))
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(json.dumps({"key": key, "scan": scan.to_dict()}), cache_path)
