"""Pose conditions: COCO-17 keypoints from a provider, pose maps (Gaussian heat maps plus
limbs) and canonical poses by k-means.

PN-GAN (Qian et al., ECCV 2018, section 3) conditions its generator on a target pose and
normalises every person to 8 canonical poses, the centres of k-means over the training set's
poses. Keypoints come from a :class:`KeypointProvider`: a keypoint file
(:class:`KeypointFile`, e.g. ``cuhk03_pose_mask/cuhk03_poses.csv`` of the shared data) or a
pose model given by path (:class:`KeypointModel`).

Keypoint arrays are ``(17, 3)`` float32 ``(x, y, v)``: pixel coordinates of the source image
(origin top-left) and a visibility / confidence ``v`` in ``[0, 1]``; ``NaN`` rows are missing.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import torch

from ..config import ConfigError
from ..errors import UserError

#: COCO-17 keypoint names, in COCO order ("left" is the person's left)
COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
#: COCO's 19 limbs (the ``skeleton`` of the COCO person category, 0-based keypoint indices)
COCO_SKELETON = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)
NUM_KEYPOINTS = len(COCO_KEYPOINTS)
#: channels of a pose map: one heat map per keypoint, then one per limb
POSE_CHANNELS = NUM_KEYPOINTS + len(COCO_SKELETON)


class KeypointError(UserError, ValueError):
    """A keypoint file or model is missing or malformed (the message names it and the fix)."""


class KeypointProvider:
    """Keypoints of an image: ``provider(path) -> ((17, 3) float32 array, (width, height))``
    or ``None`` when no person was found. ``path`` is the image file."""

    def __call__(self, path: str):
        raise NotImplementedError


class KeypointFile(KeypointProvider):
    """Keypoints read from a CSV file with the columns ``file, width, height`` then
    ``<name>_x, <name>_y, <name>_v`` for the 17 :data:`COCO_KEYPOINTS` (empty cells: no
    person). ``file`` is relative to the dataset root (``bounding_box_train/0001_c1s1_...jpg``);
    an image is looked up by its last two path components, else by its file name (which must
    then be unique in the file).

    Raises:
        KeypointError: the file does not exist or lacks a column (at construction), or an image
            is not in it (at lookup; ``None`` is returned only for rows without a person).
    """

    def __init__(self, csv_path: str):
        self.path = str(csv_path)
        if not os.path.isfile(self.path):
            raise KeypointError(
                f"keypoint file '{self.path}' does not exist; set POSE.SOURCE to a CSV of COCO-17 "
                "keypoints (e.g. cuhk03_pose_mask/cuhk03_poses.csv) or a pose model file"
            )
        cols = [f"{k}_{c}" for k in COCO_KEYPOINTS for c in "xyv"]
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [
                c for c in ("file", "width", "height", *cols) if c not in (reader.fieldnames or ())
            ]
            if missing:
                raise KeypointError(
                    f"keypoint file '{self.path}' lacks the column(s) {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}; expected file, width, height, then "
                    "<keypoint>_x, _y, _v for the 17 COCO keypoints"
                )
            self.rows: dict[str, tuple] = {}
            for row in reader:
                size = (int(row["width"]), int(row["height"]))
                if row["nose_x"] == "":
                    kp = None
                else:
                    kp = np.asarray([float(row[c]) for c in cols], np.float32).reshape(-1, 3)
                self.rows[row["file"].replace("\\", "/")] = (kp, size)
        names: dict[str, str | None] = {}
        for key in self.rows:
            base = key.rsplit("/", 1)[-1]
            names[base] = None if base in names else key  # None: ambiguous
        self._by_name = names

    def key_of(self, path: str) -> str:
        parts = str(path).replace("\\", "/").split("/")
        tail = "/".join(parts[-2:])
        if tail in self.rows:
            return tail
        key = self._by_name.get(parts[-1])
        if key is None:
            why = "appears more than once" if parts[-1] in self._by_name else "is not in it"
            raise KeypointError(
                f"image '{path}' {why} in keypoint file '{self.path}'; give a keypoint file "
                "written for this dataset"
            )
        return key

    def __call__(self, path: str):
        kp, size = self.rows[self.key_of(path)]
        return None if kp is None else (kp.copy(), size)

    def all_keypoints(self, prefix: str = "") -> tuple[list[str], np.ndarray, np.ndarray]:
        """The detected rows whose ``file`` starts with ``prefix`` (e.g. ``bounding_box_train/``):
        ``(files, keypoints (M, 17, 3), sizes (M, 2) as (width, height))``, in file order."""
        files = sorted(
            k for k, (kp, _) in self.rows.items() if kp is not None and k.startswith(prefix)
        )
        kps = np.stack([self.rows[k][0] for k in files]) if files else np.zeros((0, 17, 3))
        sizes = np.asarray([self.rows[k][1] for k in files], np.float32).reshape(-1, 2)
        return files, kps.astype(np.float32), sizes


class KeypointModel(KeypointProvider):
    """Keypoints from a pose model given by path: a TorchScript file whose ``forward`` takes an
    RGB image ``(1, 3, H, W)`` float in ``[0, 1]`` (the file as read) and returns ``(17, 3)`` or
    ``(1, 17, 3)`` COCO-17 ``(x, y, v)`` in that image's pixels (``v`` <= 0 everywhere: no
    person).

    Raises:
        KeypointError: the file does not exist or is not a TorchScript module, or the model
            returns another shape.
    """

    def __init__(self, model_path: str, device: str = "cpu"):
        self.path, self.device = str(model_path), device
        if not os.path.isfile(self.path):
            raise KeypointError(f"pose model '{self.path}' does not exist (POSE.SOURCE)")
        try:
            self.model = torch.jit.load(self.path, map_location=device).eval()
        except (RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise KeypointError(
                f"pose model '{self.path}' is not a TorchScript file ({first}); export it with "
                "torch.jit.script / torch.jit.trace, or give a keypoint CSV"
            ) from None

    @torch.no_grad()
    def __call__(self, path: str):
        from .datasets import read_image

        img = read_image(path)
        x = torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)[None]
        out = self.model(x.to(self.device)).float().cpu().reshape(-1)
        if out.numel() != NUM_KEYPOINTS * 3:
            raise KeypointError(
                f"pose model '{self.path}' returned {out.numel()} values for '{path}'; expected "
                "(17, 3) COCO-17 (x, y, v)"
            )
        kp = out.numpy().reshape(NUM_KEYPOINTS, 3)
        return None if (kp[:, 2] <= 0).all() else (kp, img.size)


def build_keypoint_provider(source: str, device: str = "cpu") -> KeypointProvider:
    """``source`` (``POSE.SOURCE``): a ``.csv`` keypoint file (:class:`KeypointFile`) or a
    TorchScript pose model (``.pt`` / ``.pth`` / ``.ts`` / ``.jit``: :class:`KeypointModel`).

    Raises:
        ConfigError: ``source`` is empty or of another kind.
        KeypointError: the file is missing or malformed.
    """
    src = str(source or "")
    ext = os.path.splitext(src)[1].lower()
    if ext == ".csv":
        return KeypointFile(src)
    if ext in (".pt", ".pth", ".ts", ".jit"):
        return KeypointModel(src, device)
    raise ConfigError(
        f"POSE.SOURCE '{src}' must be a keypoint CSV (.csv) or a TorchScript pose model "
        "(.pt/.pth/.ts/.jit)"
    )


def _gaussian(d2: torch.Tensor, sigma: float) -> torch.Tensor:
    """``exp(-d2 / 2 sigma^2)``, exactly 0 where it is below ``exp(-80)`` (~2e-35): the tail
    would otherwise be float32 subnormals, which make ``exp`` and every later multiplication
    with the map (the generator's first convolution) many times slower on x86 CPUs."""
    arg = -d2 / (2 * sigma**2)
    return torch.where(arg > -80.0, torch.exp(arg.clamp_min(-80.0)), 0.0)


def render_pose_map(
    keypoints,
    out_size: tuple[int, int],
    src_size: tuple[int, int] | None = None,
    sigma: float = 1.5,
    limb_sigma: float = 1.0,
    min_visibility: float = 0.0,
) -> torch.Tensor:
    """Pose map ``(17 + 19, H, W)`` float32 in ``[0, 1]``: a Gaussian heat map per keypoint,
    ``exp(-d^2 / 2 sigma^2)`` with ``d`` the pixel distance to the keypoint, then a map per
    COCO limb, ``exp(-d^2 / 2 limb_sigma^2)`` with ``d`` the distance to the segment between its
    two keypoints (the PN-GAN condition; heat maps as in pose estimation).

    Args:
        keypoints: ``(17, 3)`` ``(x, y, v)`` in the pixels of an image of ``src_size``, or
            ``(17, 2)`` (all visible), or ``None`` (no person: an all-zero map).
        out_size: ``(H, W)`` of the map; coordinates are scaled by ``W / src_w`` and
            ``H / src_h`` and taken at pixel centres (pixel ``(i, j)`` is at ``(j + 0.5, i +
            0.5)``).
        src_size: ``(width, height)`` of the source image; ``None``: ``(W, H)`` (no scaling).
        sigma, limb_sigma: widths in output pixels.
        min_visibility: a keypoint with ``v`` below it, or a NaN coordinate, is missing: its
            heat map and the maps of its limbs are zero.
    """
    h, w = int(out_size[0]), int(out_size[1])
    out = torch.zeros(POSE_CHANNELS, h, w)
    if keypoints is None:
        return out
    kp = torch.as_tensor(np.asarray(keypoints, np.float32))
    if kp.ndim != 2 or kp.shape[0] != NUM_KEYPOINTS or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must be (17, 2) or (17, 3), got {tuple(kp.shape)}")
    sw, sh = src_size if src_size is not None else (w, h)
    xy = kp[:, :2] * torch.tensor([w / float(sw), h / float(sh)])
    present = torch.isfinite(xy).all(1)
    if kp.shape[1] == 3:
        present &= kp[:, 2] >= min_visibility
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (H, W)
    # every map at once (one tensor op per step, not per keypoint or limb: ~30x faster)
    pts = torch.nonzero(present).flatten()
    if len(pts):
        p = xy[pts][:, :, None, None]  # (K, 2, 1, 1)
        d2 = (gx - p[:, 0]) ** 2 + (gy - p[:, 1]) ** 2
        out[pts] = _gaussian(d2, sigma)
    seen = present.tolist()
    limbs = [i for i, (a, b) in enumerate(COCO_SKELETON) if seen[a] and seen[b]]
    if limbs:
        ends = torch.tensor([COCO_SKELETON[i] for i in limbs])
        pa = xy[ends[:, 0]][:, :, None, None]  # (L, 2, 1, 1)
        ab = xy[ends[:, 1]][:, :, None, None] - pa
        t = ((gx - pa[:, 0]) * ab[:, 0] + (gy - pa[:, 1]) * ab[:, 1]) / ab.pow(2).sum(1).clamp_min(
            1e-6
        )
        t = t.clamp(0, 1)  # the nearest point of the segment
        d2 = (gx - (pa[:, 0] + t * ab[:, 0])) ** 2 + (gy - (pa[:, 1] + t * ab[:, 1])) ** 2
        out[NUM_KEYPOINTS + torch.tensor(limbs)] = _gaussian(d2, limb_sigma)
    return out


#: the colours of OpenPose's COCO rendering (its 18-part palette, RGB in [0, 255]): joint k
#: takes colour k, limb l colour l modulo 18
OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
#: pose inputs of a pose-conditioned generator: ``maps`` = the ``(36, H, W)`` maps of
#: :func:`render_pose_map`; ``picture`` = a ``(3, H, W)`` skeleton picture
#: (:func:`pose_maps_to_picture`), as the pose images PN-GAN's released code reads
POSE_FORMATS = ("maps", "picture")


def pose_channels(fmt: str) -> int:
    """Channels of a pose input of format ``fmt`` (``POSE.FORMAT``): 36 or 3.

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in POSE_FORMATS:
        raise ValueError(f"POSE.FORMAT '{fmt}' is unknown: {' | '.join(POSE_FORMATS)}")
    return POSE_CHANNELS if fmt == "maps" else 3


def pose_maps_to_picture(maps: torch.Tensor) -> torch.Tensor:
    """``(..., 36, H, W)`` pose maps in ``[0, 1]`` -> ``(..., 3, H, W)`` skeleton picture in
    ``[-1, 1]``: each joint and limb drawn in its OpenPose colour (:data:`OPENPOSE_COLORS`),
    the brightest drawing on top (per pixel the maximum over the maps), on black (-1). A
    3-channel pose image like the OpenPose / AlphaPose renderings that naiq/PN_GAN's
    ``script/GAN/dataset.py`` reads and normalises to ``[-1, 1]`` (the release ships neither
    the pictures nor the renderer's widths; the widths here are ``POSE.SIGMA`` /
    ``LIMB_SIGMA``)."""
    n = maps.shape[-3]
    if n != POSE_CHANNELS:
        raise ValueError(f"pose maps must have {POSE_CHANNELS} channels, got {n}")
    colors = (
        torch.tensor(
            [OPENPOSE_COLORS[i % len(OPENPOSE_COLORS)] for i in range(NUM_KEYPOINTS)]
            + [OPENPOSE_COLORS[i % len(OPENPOSE_COLORS)] for i in range(len(COCO_SKELETON))],
            dtype=maps.dtype,
            device=maps.device,
        )
        / 255.0
    )  # (36, 3)
    painted = maps.unsqueeze(-4) * colors.t().reshape(3, n, 1, 1)  # (..., 3, 36, H, W)
    return painted.amax(-3) * 2 - 1


def render_pose_input(keypoints, out_size, src_size=None, sigma=1.5, limb_sigma=1.0,
                      min_visibility=0.0, fmt: str = "maps") -> torch.Tensor:  # fmt: skip
    """The pose input of format ``fmt``: :func:`render_pose_map` (``maps``) or its
    :func:`pose_maps_to_picture` (``picture``)."""
    maps = render_pose_map(keypoints, out_size, src_size, sigma, limb_sigma, min_visibility)
    pose_channels(fmt)
    return maps if fmt == "maps" else pose_maps_to_picture(maps)


def canonical_poses(
    keypoints: np.ndarray,
    sizes: np.ndarray,
    k: int = 8,
    seed: int = 0,
    inside_only: bool = True,
    upright_only: bool = True,
    iterations: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """PN-GAN's canonical poses (section 3.2): k-means over the training set's poses.

    Each pose is its 17 ``(x, y)`` divided by the image ``(width, height)`` (so crops of any
    size compare; a 34-d vector in ``[0, 1]``); k-means is scipy's ``kmeans2`` with k-means++
    seeding from ``seed`` (deterministic). The centres are ordered by cluster size, largest
    first (ties by the mean x of the shoulders), so centre 0 is the most common pose.

    Args:
        keypoints: ``(M, 17, 3)`` or ``(M, 17, 2)`` detected poses in pixels.
        sizes: ``(M, 2)`` ``(width, height)`` of each image.
        inside_only: use only poses whose 17 keypoints lie inside the image (pose models
            extrapolate the limbs of people cut off by the frame).
        upright_only: use only upright poses (nose above the shoulders, shoulders above the
            hips, hips above the ankles, by their mean y): on the CUHK03 training keypoints 2 % of
            the detections are upside down or collapsed (a person the model misread), and
            without this filter they form a canonical "pose" of their own.

    Returns:
        ``(centres (k, 17, 2) float32 in normalised [0, 1] coordinates, counts (k,) int64)``;
        render a centre with :func:`render_pose_map` and ``src_size=(1, 1)``.

    Raises:
        ValueError: fewer usable poses than ``k``.
    """
    from scipy.cluster.vq import kmeans2

    kp = np.asarray(keypoints, np.float64)[:, :, :2]
    norm = kp / np.asarray(sizes, np.float64).reshape(-1, 1, 2)
    ok = np.isfinite(norm).all((1, 2))
    if inside_only:
        ok &= ((norm >= 0) & (norm <= 1)).all((1, 2))
    if upright_only:
        y = norm[:, :, 1]
        ok &= (y[:, 0] < y[:, 5:7].mean(1)) & (y[:, 5:7].mean(1) < y[:, 11:13].mean(1))
        ok &= y[:, 11:13].mean(1) < y[:, 15:17].mean(1)
    data = norm[ok].reshape(-1, NUM_KEYPOINTS * 2)
    if len(data) < k:
        raise ValueError(
            f"k-means of {k} canonical poses needs at least {k} poses, got {len(data)}"
        )
    centres, labels = kmeans2(
        data, k, iter=iterations, minit="++", seed=np.random.default_rng(seed)
    )
    counts = np.bincount(labels, minlength=k)
    shoulder_x = centres.reshape(k, NUM_KEYPOINTS, 2)[:, 5:7, 0].mean(1)
    order = sorted(range(k), key=lambda i: (-counts[i], shoulder_x[i]))
    return (
        centres[order].reshape(k, NUM_KEYPOINTS, 2).astype(np.float32),
        counts[order].astype(np.int64),
    )
