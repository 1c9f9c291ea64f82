"""Person foreground masks for masked losses (PTGAN's identity term), from a provider:

- :class:`FolderMaskProvider`: a folder of mask images, one per image, found by the image's
  file stem (e.g. ``../shared/data/cuhk03_pose_mask/cuhk03_masks/<split>/<stem>.png``: 8-bit,
  person probability x 255);
- :class:`ModelMaskProvider`: a segmentation model given by path (TorchScript, ``[0, 1]`` RGB
  ``(1, 3, H, W)`` in, person probability ``(1, 1, H, W)`` or logits ``(1, 2+, H, W)`` with
  the person in channel 1 out), run once per image and cached on disk as PNG.

Both return ``(1, H, W)`` float masks in ``[0, 1]`` at the image's size.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from PIL import Image

from ..data.datasets import read_image
from ..errors import UserError


class MaskNotFoundError(UserError, FileNotFoundError):
    """No mask for an image (the message names the image and the provider's folder)."""


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _to_tensor(mask: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """An ``L`` mask as ``(1, H, W)`` float in ``[0, 1]`` at ``size`` = (W, H)."""
    if mask.size != size:
        mask = mask.resize(size, Image.BILINEAR)
    return torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None]


class FolderMaskProvider:
    """Masks of a folder (searched recursively), by image file stem: ``<stem>.png`` (or
    ``.jpg``) anywhere under ``root``. A symlinked image is looked up by its own stem.

    Raises:
        MaskNotFoundError: ``root`` does not exist, or (in :meth:`__call__`) has no mask for
            the image.
    """

    def __init__(self, root: str):
        if not os.path.isdir(root):
            raise MaskNotFoundError(f"mask folder '{root}' does not exist")
        self.root = root
        self.index: dict[str, str] = {}
        for folder, _, files in os.walk(root):
            for f in files:
                if f.lower().endswith((".png", ".jpg", ".jpeg")):
                    self.index.setdefault(os.path.splitext(f)[0], os.path.join(folder, f))

    def __call__(self, image_path: str, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The mask of ``image_path`` as ``(1, H, W)`` in ``[0, 1]``; ``size`` = (W, H)
        (default: the image's)."""
        path = self.index.get(_stem(image_path))
        if path is None:
            raise MaskNotFoundError(
                f"no mask for '{image_path}' in '{self.root}' (expected '{_stem(image_path)}.png' "
                "under it); add it, or use a mask model (a provider given by path)"
            )
        with Image.open(path) as m:
            m = m.convert("L")
            if size is None:
                with Image.open(image_path) as img:
                    size = img.size
            return _to_tensor(m, size)


class ModelMaskProvider:
    """Masks computed by a segmentation model (a TorchScript file) and cached on disk:
    ``<cache_dir>/<stem>_<hash of the image path>.png``, so each image is segmented once
    (the cache survives runs).

    Raises:
        MaskNotFoundError: the model file does not exist.
    """

    def __init__(self, model_path: str, cache_dir: str, device: str = "cpu"):
        if not os.path.isfile(model_path):
            raise MaskNotFoundError(
                f"mask model '{model_path}' does not exist; give a TorchScript segmentation "
                "model ([0, 1] RGB (1, 3, H, W) in, person probability (1, 1, H, W) out)"
            )
        self.model_path, self.cache_dir, self.device = model_path, cache_dir, device
        self._model = None
        os.makedirs(cache_dir, exist_ok=True)

    def cache_path(self, image_path: str) -> str:
        h = hashlib.sha1(os.path.abspath(image_path).encode()).hexdigest()[:12]
        return os.path.join(self.cache_dir, f"{_stem(image_path)}_{h}.png")

    @torch.no_grad()
    def _segment(self, image_path: str, img: Image.Image, cached: str) -> None:
        if self._model is None:
            self._model = torch.jit.load(self.model_path, map_location=self.device).eval()
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        out = self._model(x[None].to(self.device)).float().cpu()
        if out.shape[1] > 1:  # logits per class: the person is class 1
            out = out.softmax(1)[:, 1:2]
        p = out[0, 0].clamp(0, 1)
        tmp = cached + ".tmp.png"
        Image.fromarray((p.numpy() * 255).round().astype(np.uint8)).save(tmp)
        os.replace(tmp, cached)

    def prepare(self, image_paths) -> int:
        """Segment every image of ``image_paths`` that is not cached yet, in this process and
        on the provider's device; returns how many were segmented. Engines call it before
        their data loaders start: the loaders' worker processes then only read the cache
        (CUDA cannot be used in a forked worker)."""
        n = 0
        for path in image_paths:
            cached = self.cache_path(path)
            if not os.path.isfile(cached):
                self._segment(path, read_image(path), cached)
                n += 1
        return n

    def __call__(self, image_path: str, size: tuple[int, int] | None = None) -> torch.Tensor:
        cached = self.cache_path(image_path)
        img = read_image(image_path)
        size = size or img.size
        if not os.path.isfile(cached):
            self._segment(image_path, img, cached)
        with Image.open(cached) as m:
            return _to_tensor(m.convert("L"), size)


def build_mask_provider(folder: str = "", model: str = "", cache_dir: str = "", device="cpu"):
    """:class:`FolderMaskProvider` of ``folder``, else :class:`ModelMaskProvider` of
    ``model`` (cached in ``cache_dir``).

    Raises:
        MaskNotFoundError: neither is given (the message names the config keys).
    """
    if folder:
        return FolderMaskProvider(folder)
    if model:
        return ModelMaskProvider(model, cache_dir, device)
    raise MaskNotFoundError(
        "no mask provider: set MASKS.FOLDER (a folder of <image stem>.png masks) or "
        "MASKS.MODEL (a TorchScript segmentation model, cached in MASKS.CACHE)"
    )


def mask_provider_from_cfg(cfg, device):
    """The provider of a config's ``MASKS`` keys (:func:`build_mask_provider`):
    ``MASKS.FOLDER``, else ``MASKS.MODEL`` on ``device`` (the run's resolved device), cached in
    ``MASKS.CACHE`` (default ``<OUTPUT_DIR>/../mask_cache``, shared by the runs of one
    method). Used by PTGAN's translator and PN-GAN's generator stage.

    Raises:
        MaskNotFoundError: neither key is set.
    """
    m = cfg.MASKS
    cache = m.CACHE or os.path.join(os.path.dirname(os.path.abspath(cfg.OUTPUT_DIR)), "mask_cache")
    return build_mask_provider(m.FOLDER, m.MODEL, cache, device)


class MaskedImageDataset(torch.utils.data.Dataset):
    """``[(path, pid, camid, ...)]`` -> ``{img, mask, pid, camid, impath}``: the image and its
    mask transformed with one random draw (:class:`~.transforms.JointTransform`)."""

    def __init__(self, items, joint_transform, provider, mode: str = "RGB"):
        self.items, self.tf, self.provider, self.mode = list(items), joint_transform, provider, mode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, pid, camid = self.items[i][:3]
        img = read_image(path, self.mode)
        sample = {"img": img, "mask": self.provider(path, img.size), "pid": pid, "camid": camid,
                  "impath": path}  # fmt: skip
        return self.tf(sample)
