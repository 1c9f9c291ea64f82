"""Generation quality (paper Table 1): FID (pytorch-fid's Inception) and SSIM diversity.

FID: the pool-3 (2048-d) activations of pytorch-fid's ``InceptionV3`` (the TensorFlow FID
Inception ported to PyTorch) on the images of two folders, each image resized bilinearly to
299 x 299 (what ``InceptionV3(resize_input=True)`` does itself, done per image here so that
folders of mixed image sizes batch), then pytorch-fid's ``calculate_frechet_distance``.
FID is biased for small sets: compare numbers only at equal image counts (thousands).

SSIM diversity: the mean SSIM over all pairs of generated images that share an appearance
source (from the writer's ``manifest.csv``) or, without a manifest, an identity (the pid of
the Market file name). SSIM is the standard one of Wang et al. (2004): an 11 x 11 Gaussian
window with sigma 1.5, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, no padding, on ``[0, 1]``
RGB (``L = 1``), averaged over the map and the three channels.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..data.datasets import parse_market_name
from ..data.images import list_images

#: the Inception weights pytorch-fid downloads (pass this file as ``weights_path`` offline)
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


class InceptionWeightsError(RuntimeError):
    """The FID Inception weights are neither at the given path nor downloadable."""


# ---------------------------------------------------------------------------------- SSIM
def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pair SSIM of ``x`` and ``y``, ``(N, C, H, W)`` in ``[0, data_range]`` (``H, W >=
    11``): torchmetrics' ``structural_similarity_index_measure`` (Wang et al. 2004: 11x11
    Gaussian window, sigma 1.5, K1 0.01, K2 0.03, the map's valid region averaged over space
    and channels), computed in float64. Returns ``(N,)``; 1 for identical images.

    Raises:
        ValueError: the shapes differ.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if x.shape != y.shape:
        raise ValueError(f"SSIM needs images of one shape, got {tuple(x.shape)} and {y.shape}")
    return structural_similarity_index_measure(
        x.double(),
        y.double(),
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=float(data_range),
        reduction="none",
    )


def _read01(path: str, size=None) -> torch.Tensor:
    """An image file as ``(3, H, W)`` in ``[0, 1]``, bilinearly resized to ``size`` if given."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(arr).permute(2, 0, 1)
    if size is not None and tuple(t.shape[1:]) != tuple(size):
        t = F.interpolate(t[None], size=tuple(size), mode="bilinear", align_corners=False)[0]
    return t


def _image_folder(folder: str) -> tuple[str, str | None]:
    """``(image folder, manifest path or None)``; a Market root means its training images."""
    folder = os.path.abspath(folder)
    if os.path.isdir(os.path.join(folder, "bounding_box_train")):
        root, images = folder, os.path.join(folder, "bounding_box_train")
    else:
        root, images = os.path.dirname(folder), folder
    for cand in (os.path.join(images, "manifest.csv"), os.path.join(root, "manifest.csv")):
        if os.path.isfile(cand):
            return images, cand
    return images, None


def group_generated(folder: str) -> list[list[str]]:
    """Groups of image paths of ``folder`` (a folder of images or a Market root) sharing an
    appearance source (``manifest.csv`` next to the images or in the root) or else a pid."""
    images, manifest = _image_folder(folder)
    paths = list_images(images)
    groups: dict[str, list[str]] = defaultdict(list)
    if manifest is not None:
        base = os.path.dirname(manifest)
        with open(manifest, newline="") as f:
            reader = csv.DictReader(f)
            # ``source``: the core manifest (data.generated); ``appearance_source``: DG-Net
            # sets written before DG-Net used the core writer
            column = "source" if "source" in (reader.fieldnames or ()) else "appearance_source"
            source = {os.path.normpath(os.path.join(base, r["file"])): r[column] for r in reader}
        for p in paths:
            if os.path.normpath(p) in source:  # real images linked in are not generated
                groups[source[os.path.normpath(p)]].append(p)
    else:
        for p in paths:
            try:
                pid, _ = parse_market_name(p)
            except ValueError as e:
                raise ValueError(
                    f"{e}. Without a manifest.csv next to the images, generated images are "
                    "grouped by appearance through their Market names"
                ) from None
            groups[str(pid)].append(p)
    return list(groups.values())


def ssim_diversity(source, max_pairs: int | None = None, seed: int = 0, size=None) -> dict:
    """Mean SSIM over the pairs of images within each group (the paper's SSIM column).

    Args:
        source: a folder (grouped by :func:`group_generated`) or a list of groups, each a
            tensor ``(M, 3, H, W)`` in ``[0, 1]`` or a list of image paths.
        max_pairs: at most this many pairs, drawn uniformly (seeded) from all of them.
        size: ``(H, W)`` every image is resized to; default: the first image's size.

    Returns ``{"ssim": mean over pairs, "pairs": count, "groups": groups with >= 2 images}``.
    """
    groups = group_generated(str(source)) if isinstance(source, str | os.PathLike) else source
    groups = [g for g in groups if len(g) >= 2]
    pairs = [
        (gi, a, b)
        for gi, g in enumerate(groups)
        for a, b in itertools.combinations(range(len(g)), 2)
    ]
    if not pairs:
        raise ValueError(
            "SSIM diversity needs at least one group with 2 images of the same appearance; "
            "generate with --per-image 2 or more"
        )
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = sorted(random.Random(seed).sample(pairs, max_pairs))
    cache: dict[tuple[int, int], torch.Tensor] = {}

    def image(gi: int, k: int) -> torch.Tensor:
        nonlocal size
        g = groups[gi]
        if torch.is_tensor(g):
            t = g[k].float()
            if size is not None and tuple(t.shape[1:]) != tuple(size):
                t = F.interpolate(t[None], size=tuple(size), mode="bilinear")[0]
        else:
            if (gi, k) not in cache:
                cache[(gi, k)] = _read01(str(g[k]), size)
            t = cache[(gi, k)]
        if size is None:
            size = tuple(t.shape[1:])
        return t

    total, n, batch = 0.0, 0, 256
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        x = torch.stack([image(gi, a) for gi, a, _ in chunk])
        y = torch.stack([image(gi, b) for gi, _, b in chunk])
        total += ssim(x, y).sum().item()
        n += len(chunk)
        if len(cache) > 4096:
            cache.clear()
    return {"ssim": total / n, "pairs": n, "groups": len(groups)}


# ---------------------------------------------------------------------------------- FID
def _pytorch_fid(module: str):
    """``pytorch_fid.<module>`` (the optional extra ``dgnet_plugin[fid]``). Raises
    ``ImportError`` naming the extra to install when pytorch-fid is missing."""
    import importlib

    try:
        return importlib.import_module(f"pytorch_fid.{module}")
    except ImportError as e:
        raise ImportError(
            "FID needs pytorch-fid, an optional dependency: pip install 'dgnet_plugin[fid]' "
            f"(or pip install pytorch-fid==0.3.0); {e}"
        ) from e


def build_inception(weights_path: str | None = None, dims: int = 2048) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` returning the ``dims``-d block (2048 = pool 3).

    Weights: ``weights_path`` (pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``) when
    given, else pytorch-fid's own download (or the torch hub cache).

    Raises:
        FileNotFoundError: ``weights_path`` does not exist.
        InceptionWeightsError: no path was given and the download failed (offline), or the
            file does not hold the FID Inception weights.
    """
    from unittest import mock

    pfi = _pytorch_fid("inception")

    block = pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]
    if not weights_path:
        try:
            return pfi.InceptionV3([block])
        except Exception as e:
            raise InceptionWeightsError(
                f"cannot get the FID Inception weights: the download of {pfi.FID_WEIGHTS_URL} "
                f"failed ({type(e).__name__}: {e}). Offline, download {FID_WEIGHTS_FILE} "
                "elsewhere and pass its path (--inception-weights FILE, or weights_path=FILE)"
            ) from e
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(
            f"Inception weights '{weights_path}' do not exist; pass the path of pytorch-fid's "
            f"{FID_WEIGHTS_FILE} ({pfi.FID_WEIGHTS_URL}) to --inception-weights"
        )
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    # pytorch-fid builds the network and loads its weights from the URL in one call; its
    # loader is pointed at the local file for that call only.
    try:
        with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
            return pfi.InceptionV3([block])
    except RuntimeError as e:
        raise InceptionWeightsError(
            f"'{weights_path}' does not hold the FID Inception weights ({e}); pass "
            f"{FID_WEIGHTS_FILE} from {pfi.FID_WEIGHTS_URL}"
        ) from e


class _Folder(Dataset):
    def __init__(self, paths, size):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return _read01(self.paths[i], self.size)


@torch.no_grad()
def activations(paths, model, batch_size=50, device="cpu", size=(299, 299), num_workers=0):
    """``(N, D)`` numpy features of ``model`` on the images ``paths`` (``[0, 1]`` RGB resized
    to ``size``). ``model`` returns a tensor ``(N, D[, 1, 1])`` or, like pytorch-fid's
    ``InceptionV3``, a list whose first entry is one."""
    model = model.to(device).eval()
    feats = []
    loader = DataLoader(_Folder(list(paths), size), batch_size=batch_size, num_workers=num_workers)
    for x in loader:
        out = model(x.to(device))
        out = out[0] if isinstance(out, list | tuple) else out
        if out.dim() == 4:
            out = F.adaptive_avg_pool2d(out, 1)
        feats.append(out.flatten(1).double().cpu())
    return torch.cat(feats).numpy()


def fid(
    generated_dir: str,
    real_dir: str,
    weights_path: str | None = None,
    model: torch.nn.Module | None = None,
    batch_size: int = 50,
    device="cpu",
    size=(299, 299),
    num_workers: int = 0,
) -> float:
    """FID between the images of two folders (a Market root means its
    ``bounding_box_train/``), with pytorch-fid's Inception (:func:`build_inception`) unless a
    ``model`` is given (tests inject a small one), and pytorch-fid's
    ``calculate_frechet_distance`` on the activation means and covariances.

    Raises:
        ValueError: a folder holds fewer than 2 images.
        InceptionWeightsError / FileNotFoundError: see :func:`build_inception`.
    """
    calculate_frechet_distance = _pytorch_fid("fid_score").calculate_frechet_distance

    sets = []
    for folder in (generated_dir, real_dir):
        paths = list_images(_image_folder(folder)[0])
        if len(paths) < 2:
            raise ValueError(f"FID needs at least 2 images in '{folder}', found {len(paths)}")
        sets.append(paths)
    if model is None:
        model = build_inception(weights_path)
    stats = []
    for paths in sets:
        act = activations(paths, model, batch_size, device, size, num_workers)
        stats.append((act.mean(0), np.cov(act, rowvar=False)))
    (m1, s1), (m2, s2) = stats
    return float(calculate_frechet_distance(m1, s1, m2, s2))
