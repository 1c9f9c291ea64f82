"""``market_layout``: any folder in the Market-1501 layout, as a torchreid image dataset."""

from __future__ import annotations

import glob
import os
import re

from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from ..utils import torchreid_compat as tr

MARKET_SUBDIRS = ("bounding_box_train", "query", "bounding_box_test")
MARKET_NAME = re.compile(r"([-\d]+)_c(\d+)")


class DatasetNotFoundError(UserError, FileNotFoundError):
    """A dataset folder is missing; the message says where we looked and the layout we expect."""


class CorruptImageError(UserError, OSError):
    """An image file exists but cannot be decoded."""


def read_image(path: str, mode: str = "RGB") -> Image.Image:
    """Open ``path`` converted to the PIL ``mode``: ``"RGB"`` (default) or ``"L"`` (one
    channel: infrared, gray; an RGB file is converted with PIL's ITU-R 601 luma, so an
    infrared crop stored as three equal channels keeps its values). Any PIL mode is accepted.

    Raises:
        ValueError: ``mode`` is not a PIL mode.
        FileNotFoundError: ``path`` does not exist.
        CorruptImageError: the file exists but cannot be decoded (the message names it).

    torchreid's ``read_image`` retries forever on an unreadable file; this one fails at once.
    """
    try:
        Image.getmodebands(mode)
    except (KeyError, ValueError):
        raise ValueError(f"read_image: unknown PIL mode '{mode}' (RGB | L | ...)") from None
    try:
        with Image.open(path) as img:
            return img.convert(mode)
    except FileNotFoundError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise CorruptImageError(
            f"cannot decode image '{path}' ({type(e).__name__}: {e}); delete or replace the file"
        ) from None


def market_layout_help(root: str) -> str:
    return (
        f"expected a Market-1501 layout under '{root}':\n"
        f"  {root}/bounding_box_train/  training images\n"
        f"  {root}/query/               query images\n"
        f"  {root}/bounding_box_test/   gallery images\n"
        "with Market file names '<pid>_c<cam>s<seq>_<frame>_<box>.jpg' (pid -1 = junk, "
        "0000 = distractor). Set DATASETS.ROOT (or the REID_DATA environment variable), or "
        "give the dataset a root of its own: 'market_layout@/path/to/folder'."
    )


class MarketNameError(UserError, ValueError):
    """A file in a Market-layout folder whose name is not ``<pid>_c<cam>...``."""


def parse_market_name(path: str) -> tuple[int, int]:
    """``(pid, camera)`` of a Market-1501 file name ``<pid>_c<cam>...`` (camera 1-based).

    Raises :class:`MarketNameError` (a ``ValueError``) naming the file when it does not
    follow the naming.
    """
    m = MARKET_NAME.search(os.path.basename(path))
    if m is None:
        raise MarketNameError(
            f"'{path}' does not follow the Market-1501 naming '<pid>_c<cam>...'; rename it or "
            "remove it from the folder"
        )
    return int(m.group(1)), int(m.group(2))


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # compared in lower case: .JPG is an image


def is_image_name(path: str) -> bool:
    """Whether ``path`` ends in one of :data:`IMAGE_EXTENSIONS`, in any case."""
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def scan_market_folder(folder: str, relabel: bool, drop_junk: bool):
    """``[(path, pid, camid)]`` of the ``.jpg``/``.jpeg``/``.png`` files (any case) of
    ``folder`` (camid 0-based)."""
    paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if is_image_name(p))
    items = []
    for p in paths:
        pid, cam = parse_market_name(p)
        if drop_junk and pid == -1:
            continue
        items.append((p, pid, cam - 1))
    if relabel:
        mapping = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _ in items}))}
        items = [(p, mapping[pid], cam) for p, pid, cam in items]
    return items


class MarketLayout(tr.ImageDataset):
    """Any root holding ``bounding_box_train/``, ``query/``, ``bounding_box_test/``.

    Registered with torchreid as ``market_layout``, so ``ImageDataManager(root=<folder>,
    sources='market_layout')`` trains on a user's own data. Train pids are relabelled to
    ``0..N-1``; junk (-1) is dropped from training and kept for evaluation.
    """

    dataset_dir = ""

    def __init__(self, root: str = "", **kwargs):
        root = os.path.abspath(os.path.expanduser(root))
        missing = [d for d in MARKET_SUBDIRS if not os.path.isdir(os.path.join(root, d))]
        if missing:
            raise DatasetNotFoundError(
                f"market_layout: missing {', '.join(missing)} in '{root}'; "
                + market_layout_help(root)
            )
        self.root = root
        train = scan_market_folder(os.path.join(root, "bounding_box_train"), True, True)
        query = scan_market_folder(os.path.join(root, "query"), False, False)
        gallery = scan_market_folder(os.path.join(root, "bounding_box_test"), False, False)
        for name, split in (
            ("bounding_box_train", train),
            ("query", query),
            ("bounding_box_test", gallery),
        ):
            if not split:
                raise DatasetNotFoundError(
                    f"market_layout: no images in '{os.path.join(root, name)}'; "
                    + market_layout_help(root)
                )
        super().__init__(train, query, gallery, **kwargs)

    def __getitem__(self, index):
        # torchreid's reader loops forever on a corrupt file; ours names it and stops.
        img_path, pid, camid, dsetid = self.data[index]
        img = read_image(img_path)
        if self.transform is not None:
            img = self._transform_image(self.transform, self.k_tfm, img)
        return {"img": img, "pid": pid, "camid": camid, "impath": img_path, "dsetid": dsetid}


tr.register_image_dataset("market_layout", MarketLayout)
