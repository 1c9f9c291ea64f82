"""Visible-infrared re-ID data: SYSU-MM01 and RegDB in their published folder layouts, every
item with its modality, and the P x (K visible + K infrared) training loader.

Layouts (see ``../shared/reference/d2rl_and_gan_reid.md`` section 2):

* SYSU-MM01 (Wu et al., ICCV 2017; ``wuancong/SYSU-MM01``)::

    <root>/cam1/ .. cam6/<pid 4 digits>/<frame 4 digits>.jpg
    <root>/exp/train_id.txt val_id.txt test_id.txt   (one line of comma-separated ids)

  cam3 and cam6 are infrared, cam1, 2, 4, 5 visible. Training = ``train_id`` + ``val_id``
  (395 identities, the AGW / AlignGAN convention), relabelled ``0..N-1``. Test: query = every
  infrared image (cam3, cam6) of the ``test_id`` identities; gallery = every visible image of
  them (the protocols of :mod:`dgnet_plugin.evaluation.cross_modality` draw the single-shot /
  multi-shot galleries from it). ``camid`` is the camera number minus one.

* RegDB (Nguyen et al., Sensors 2017; split files of M. Ye)::

    <root>/Visible/<id>/<...>_v_<frame>_<id>.bmp   <root>/Thermal/<id>/<...>_t_<frame>_<id>.bmp
    <root>/idx/{train,test}_{visible,thermal}_<trial>.txt   (lines "<relative path> <label>")

  ``regdb`` is trial 1, ``regdb_trial_<t>`` trial ``t`` (1..10). Query = the trial's test
  visible images (camid 0), gallery = its test thermal images (camid 1): the default
  visible -> thermal direction; the protocol swaps them for thermal -> visible.

Infrared images are read as one channel (PIL ``L``); visible ones as RGB.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from torchvision import transforms as tv_transforms

from ..utils import torchreid_compat as tr
from .datasets import DatasetNotFoundError, is_image_name, read_image
from .sample import INFRARED, VISIBLE
from .transforms import build_transforms

#: SYSU-MM01 cameras (1-based) and their modality (dataset README)
SYSU_VISIBLE_CAMS = (1, 2, 4, 5)
SYSU_INFRARED_CAMS = (3, 6)
#: PIL mode an image of each modality is read in
MODALITY_MODE = {VISIBLE: "RGB", INFRARED: "L"}


def sysu_mm01_help(root: str) -> str:
    return (
        f"expected the SYSU-MM01 layout under '{root}':\n"
        f"  {root}/cam1/ .. cam6/<pid>/<frame>.jpg   (cam3, cam6 infrared)\n"
        f"  {root}/exp/train_id.txt, val_id.txt, test_id.txt (one line of comma-separated ids)\n"
        "Set DATASETS.ROOT to that folder (or to the folder holding SYSU-MM01/), or name it in "
        "the entry: 'sysu_mm01@/path/to/SYSU-MM01'."
    )


def regdb_help(root: str) -> str:
    return (
        f"expected the RegDB layout under '{root}':\n"
        f"  {root}/Visible/<id>/*.bmp, {root}/Thermal/<id>/*.bmp\n"
        f"  {root}/idx/train_visible_<t>.txt, train_thermal_<t>.txt, test_visible_<t>.txt, "
        "test_thermal_<t>.txt (lines '<relative path> <label>')\n"
        "Set DATASETS.ROOT to that folder (or to the folder holding RegDB/), or name it in the "
        "entry: 'regdb_trial_3@/path/to/RegDB'."
    )


def _find_root(root: str, marker: str, sub: str) -> str:
    """``root`` when it holds ``marker``, else ``root/sub`` when that does."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.exists(os.path.join(root, marker)) and os.path.exists(
        os.path.join(root, sub, marker)
    ):
        return os.path.join(root, sub)
    return root


def read_sysu_ids(path: str) -> list[int]:
    """The ids of a SYSU-MM01 ``exp/*_id.txt`` file (comma-separated, possibly over several
    lines; an empty file is an empty list).

    Raises:
        DatasetNotFoundError: the file is missing.
        ValueError: an entry is not an integer (the message names the file and the entry).
    """
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"sysu_mm01: '{path}' is missing; "
            + sysu_mm01_help(os.path.dirname(os.path.dirname(path)))
        )
    with open(path) as f:
        text = f.read()
    ids = []
    for tok in text.replace("\n", ",").split(","):
        tok = tok.strip()
        if not tok:
            continue
        try:
            ids.append(int(tok))
        except ValueError:
            raise ValueError(f"'{path}': '{tok}' is not an integer identity") from None
    return ids


def normalised_channels(transform) -> int | None:
    """The channel count of the ``Normalize`` in ``transform`` (a torchvision ``Compose``;
    3 for torchreid's ``ImageDataManager`` transforms), ``None`` when it has none."""
    for t in getattr(transform, "transforms", [transform]):
        if isinstance(t, tv_transforms.Normalize):
            return len(t.mean)
    return None


class CrossModalityDataset(tr.ImageDataset):
    """A torchreid image dataset whose items each have a modality (``modality_of(item)``)
    and whose ``__getitem__`` reads infrared images as one channel. ``protocol`` names the
    evaluation protocol of :mod:`dgnet_plugin.evaluation.cross_modality`.

    Items are ``{img, pid, camid, impath, dsetid, modality}`` (``modality``: ``"visible"`` |
    ``"infrared"``; batched by torchreid's loader as a list of strings). Under torchreid's
    ``ImageDataManager``, whose transforms normalise three channels, an infrared image is
    read as RGB (three equal channels, torchreid's own ``read_image``), so that every batch
    stacks; :mod:`dgnet_plugin.torchreid.d2rl` turns it back into one channel.
    """

    protocol = ""

    def modality_of(self, item) -> str:
        raise NotImplementedError

    def modalities(self, split: str) -> list[str]:
        """The modality of every item of ``split`` (``train`` | ``query`` | ``gallery``)."""
        return [self.modality_of(it) for it in getattr(self, split)]

    def __getitem__(self, index):
        item = self.data[index]
        img_path, pid, camid, dsetid = item
        m = self.modality_of(item)
        mode = MODALITY_MODE[m]
        if normalised_channels(self.transform) == 3:  # torchreid's transforms: RGB in
            mode = "RGB"  # an infrared image as three equal channels, as torchreid reads it
        img = read_image(img_path, mode)
        if self.transform is not None:
            img = self._transform_image(self.transform, self.k_tfm, img)
        return {
            "img": img,
            "pid": pid,
            "camid": camid,
            "impath": img_path,
            "dsetid": dsetid,
            "modality": m,
        }

    @staticmethod
    def _relabel(items):
        mapping = {p: i for i, p in enumerate(sorted({it[1] for it in items}))}
        return [(p, mapping[pid], cam) for p, pid, cam in items]

    def check_before_run(self, required_files):  # torchreid hook: our __init__ checks
        pass

    def _init_splits(self, train, query, gallery, **kwargs) -> None:
        """torchreid's constructor, which needs a training item: a test-only set (no training
        identities, e.g. the real sample crops) gets an empty ``train`` afterwards."""
        super().__init__(train or [query[0][:3]], query, gallery, **kwargs)
        if not train:
            self.train, self.num_train_pids, self.num_train_cams = [], 0, 0
            if self.mode == "train":
                self.data = []


class SYSUMM01(CrossModalityDataset):
    """SYSU-MM01 in its published layout (module docstring). Registered as ``sysu_mm01``."""

    dataset_dir = ""
    protocol = "sysu_mm01"

    def __init__(self, root: str = "", **kwargs):
        root = _find_root(root, "exp", "SYSU-MM01")
        missing = [
            f"cam{c}" for c in range(1, 7) if not os.path.isdir(os.path.join(root, f"cam{c}"))
        ]
        if not os.path.isdir(os.path.join(root, "exp")):
            missing.append("exp")
        if missing:
            raise DatasetNotFoundError(
                f"sysu_mm01: missing {', '.join(missing)} in '{root}'; " + sysu_mm01_help(root)
            )
        self.root = root
        exp = os.path.join(root, "exp")
        train_ids = set(read_sysu_ids(os.path.join(exp, "train_id.txt")))
        val_path = os.path.join(exp, "val_id.txt")
        if os.path.isfile(val_path):
            train_ids |= set(read_sysu_ids(val_path))
        test_ids = set(read_sysu_ids(os.path.join(exp, "test_id.txt")))
        both = train_ids & test_ids
        if both:
            raise ValueError(f"sysu_mm01 '{root}': ids {sorted(both)[:5]} are in train and test")
        train = self._relabel(self._scan(root, train_ids, range(1, 7)))
        query = self._scan(root, test_ids, SYSU_INFRARED_CAMS)
        gallery = self._scan(root, test_ids, SYSU_VISIBLE_CAMS)
        if not query or not gallery:
            raise DatasetNotFoundError(
                f"sysu_mm01: no test images (query: {len(query)}, gallery: {len(gallery)}) for "
                f"the {len(test_ids)} ids of exp/test_id.txt in '{root}'; " + sysu_mm01_help(root)
            )
        self._init_splits(train, query, gallery, **kwargs)

    @staticmethod
    def _scan(root: str, ids, cams) -> list[tuple[str, int, int]]:
        items = []
        for cam in cams:
            for pid in sorted(ids):
                folder = os.path.join(root, f"cam{cam}", f"{pid:04d}")
                for p in sorted(glob.glob(os.path.join(folder, "*"))):
                    if is_image_name(p):
                        items.append((p, pid, cam - 1))
        return items

    def modality_of(self, item) -> str:
        return INFRARED if item[2] + 1 in SYSU_INFRARED_CAMS else VISIBLE


class RegDB(CrossModalityDataset):
    """RegDB in its published layout, one split trial (module docstring). Registered as
    ``regdb`` (trial 1) and ``regdb_trial_<t>`` (t = 1..10)."""

    dataset_dir = ""
    protocol = "regdb"
    trial = 1

    def __init__(self, root: str = "", **kwargs):
        root = _find_root(root, "idx", "RegDB")
        self.root = root
        lists = {}
        for split in ("train", "test"):
            for mod in ("visible", "thermal"):
                path = os.path.join(root, "idx", f"{split}_{mod}_{self.trial}.txt")
                if not os.path.isfile(path):
                    raise DatasetNotFoundError(
                        f"regdb: '{path}' is missing (trial {self.trial}); " + regdb_help(root)
                    )
                lists[split, mod] = self._read_index(root, path, 0 if mod == "visible" else 1)
        train = self._relabel(lists["train", "visible"] + lists["train", "thermal"])
        query, gallery = lists["test", "visible"], lists["test", "thermal"]
        if not query or not gallery:
            raise DatasetNotFoundError(f"regdb: empty test lists in '{root}'; " + regdb_help(root))
        self._init_splits(train, query, gallery, **kwargs)

    @staticmethod
    def _read_index(root: str, path: str, camid: int) -> list[tuple[str, int, int]]:
        items = []
        with open(path) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                    raise ValueError(f"'{path}' line {n}: expected '<relative path> <label>'")
                img = os.path.join(root, parts[0])
                if not os.path.isfile(img):
                    raise DatasetNotFoundError(f"'{path}' line {n}: '{img}' does not exist")
                items.append((img, int(parts[1]), camid))
        return items

    def modality_of(self, item) -> str:
        return INFRARED if item[2] == 1 else VISIBLE


def _regdb_trial(t: int) -> type:
    return type(f"RegDBTrial{t}", (RegDB,), {"trial": t, "__doc__": f"RegDB split trial {t}."})


tr.register_image_dataset("sysu_mm01", SYSUMM01)
tr.register_image_dataset("regdb", RegDB)
REGDB_TRIALS = {t: _regdb_trial(t) for t in range(1, 11)}
for _t, _cls in REGDB_TRIALS.items():
    tr.register_image_dataset(f"regdb_trial_{_t}", _cls)


# ------------------------------------------------------------------ loaders
class ModalityImageDataset(Dataset):
    """``[(path, pid, camid, ...)]`` with one modality per item -> ``{img, pid, camid,
    impath, modality}``; each image is read in its modality's PIL mode (RGB | L) and
    transformed by ``transforms[modality]`` (normalised ``(3, H, W)`` / ``(1, H, W)``)."""

    def __init__(self, items, modalities: Sequence[str], transforms: dict):
        if len(items) != len(modalities):
            raise ValueError(f"{len(items)} items but {len(modalities)} modalities")
        self.items, self.modalities, self.transforms = list(items), list(modalities), transforms
        # torchreid's ranked-list drawing reads .transform of a test dataset
        self.transform = transforms[VISIBLE]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, pid, camid = self.items[i][:3]
        m = self.modalities[i]
        img = self.transforms[m](read_image(path, MODALITY_MODE[m]))
        return {"img": img, "pid": pid, "camid": camid, "impath": path, "modality": m}


def collate_by_modality(samples: list[dict]) -> dict:
    """A cross-modality batch: ``img_v`` ``(N_v, 3, H, W)``, ``pid_v``, ``img_i``
    ``(N_i, 1, H, W)``, ``pid_i``, in the sampler's order (with
    :class:`~.samplers.CrossModalityBatchSampler` both follow the same identity order)."""
    out = {}
    for key, mod in (("v", VISIBLE), ("i", INFRARED)):
        part = [s for s in samples if s["modality"] == mod]
        out[f"img_{key}"] = torch.stack([s["img"] for s in part])
        out[f"pid_{key}"] = torch.as_tensor([s["pid"] for s in part], dtype=torch.int64)
    return out


def modality_transforms(cfg, is_train: bool) -> dict:
    """``{visible: 3-channel transform, infrared: 1-channel transform}`` of the config's
    recipe (:func:`~.transforms.build_transforms`)."""
    return {
        VISIBLE: build_transforms(cfg, is_train, 3),
        INFRARED: build_transforms(cfg, is_train, 1),
    }
