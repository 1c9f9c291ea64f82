"""Samples for DG-Net's two streams: (image, another image of the same identity, pid)."""

from __future__ import annotations

import random
from collections import defaultdict

from torch.utils.data import Dataset

from .datasets import read_image
from .samplers import draw_positive


class ImageListDataset(Dataset):
    """``[(path, pid, camid, ...)]`` -> ``{img, pid, camid, impath}``; ``erase`` (optional)
    is applied to the transformed image (the IDE teacher's training input). Images are read
    in the PIL ``mode`` (RGB; L for infrared)."""

    def __init__(self, items, transform, erase=None, mode: str = "RGB"):
        self.items, self.transform, self.erase = list(items), transform, erase
        self.mode = mode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, pid, camid = self.items[i][:3]
        img = self.transform(read_image(path, self.mode))
        if self.erase is not None:
            img = self.erase(img)
        return {"img": img, "pid": pid, "camid": camid, "impath": path}


class PositivePairDataset(Dataset):
    """One DG-Net training sample: ``{img, pos, pid}`` plus ``img_erased`` / ``pos_erased``.

    ``pos`` is a uniformly drawn *other* image of the same identity (the same image when the
    identity has only one). The erased copies feed only the ID losses; generation and
    reconstruction targets use the un-erased images (official DG-Net). Tensors are
    ImageNet-normalised ``(3, H, W)`` (``(1, H, W)`` with ``mode='L'``).
    """

    def __init__(self, items, transform, erase=None, mode: str = "RGB"):
        self.items, self.transform, self.erase = list(items), transform, erase
        self.mode = mode
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        for i, item in enumerate(self.items):
            self.by_pid[item[1]].append(i)

    def __len__(self) -> int:
        return len(self.items)

    def positive_index(self, i: int) -> int:
        """A positive of item ``i`` drawn with Python's ``random`` (:func:`draw_positive`)."""
        return draw_positive(i, self.by_pid[self.items[i][1]], random.random())

    def __getitem__(self, key) -> dict:
        """``key``: an index (the positive is drawn here with Python's ``random``) or a pair
        ``(i, j)`` of an index and its positive, as :class:`~.samplers.GlobalBatchSampler`
        yields them."""
        i, j = key if isinstance(key, tuple | list) else (key, self.positive_index(key))
        img = self.transform(read_image(self.items[i][0], self.mode))
        pos = self.transform(read_image(self.items[j][0], self.mode))
        out = {"img": img, "pos": pos, "pid": self.items[i][1]}
        if self.erase is not None:
            out["img_erased"] = self.erase(img.clone())
            out["pos_erased"] = self.erase(pos.clone())
        return out
