"""Image files outside a dataset layout: folders or lists of files, read and stacked."""

from __future__ import annotations

import glob
import os

import torch

from .datasets import read_image

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp")


def list_images(sources) -> list[str]:
    """Image paths from a folder (its ``.jpg/.jpeg/.png/.bmp`` files, sorted) or a list of
    folders and files, in the given order.

    Raises:
        FileNotFoundError: a path does not exist, or a folder holds no image.
    """
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    paths: list[str] = []
    for src in map(str, sources):
        if os.path.isdir(src):
            found = sorted(
                p for ext in IMAGE_EXTENSIONS for p in glob.glob(os.path.join(src, f"*.{ext}"))
            )
            if not found:
                raise FileNotFoundError(
                    f"no .jpg/.jpeg/.png/.bmp image in folder '{src}'; pass a folder of images "
                    "or image files"
                )
            paths += found
        elif os.path.isfile(src):
            paths.append(src)
        else:
            raise FileNotFoundError(f"image or folder '{src}' does not exist")
    return paths


def load_images(paths, transform) -> torch.Tensor:
    """Read ``paths`` as RGB and stack ``transform(img)`` (for DG-Net: the test transform,
    giving ImageNet-normalised ``(3, H, W)``) into ``(N, 3, H, W)``."""
    return torch.stack([transform(read_image(str(p))) for p in paths])
