"""PN-GAN's training pairs and canonical poses (Qian et al., ECCV 2018, section 3.1-3.2)."""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ...data.datasets import read_image
from ...data.pose import (
    KeypointProvider,
    build_keypoint_provider,
    canonical_poses,
    render_pose_input,
)

CANONICAL_POSES = "canonical_poses.json"


class PosePairDataset(Dataset):
    """Pairs of images of one identity for the pose-conditioned generator: ``{img: source
    (3, H, W), target: another image of its identity (3, H, W), pose: the target's pose map
    (36, H, W), pid}``, images through ``transform`` (the stage's: ``[-1, 1]``), the pose map
    rendered at ``size`` from the target's keypoints (:func:`render_pose_map`).

    Only images with a pose are kept (``provider`` returns one for them); ``by_pid`` groups the
    kept indices by identity, for a sampler drawing ``(i, j)`` pairs (``POSE.FORMAT``
    ``picture``: the pose is the ``(3, H, W)`` skeleton picture of the maps instead).
    ``__getitem__`` takes such a pair, or an index (then the target is the image itself).
    ``source_pose``: samples also hold ``img_pose``, the source's own pose map ``(36, H, W)``
    (for self pairs, ``PNGAN.SELF_PAIRS``). ``masks``: a person-mask provider
    (:mod:`dgnet_plugin.offline_augmentation.masks`); samples then also hold ``target_mask``, the
    target's
    mask ``(1, H, W)`` in ``[0, 1]`` (and ``img_mask``, the source's, with ``source_pose``),
    for ``PNGAN.BACKGROUND_WEIGHT``.
    """

    def __init__(
        self,
        items,
        provider: KeypointProvider,
        transform,
        size,
        pose_cfg,
        source_pose=False,
        masks=None,
    ):
        self.source_pose = bool(source_pose)
        self.masks, self.provider = masks, provider
        self.transform, self.size = transform, (int(size[0]), int(size[1]))
        self.sigma, self.limb_sigma = pose_cfg.SIGMA, pose_cfg.LIMB_SIGMA
        self.min_visibility = pose_cfg.MIN_VISIBILITY
        self.format = pose_cfg.get("FORMAT", "maps")
        self.items, self.keypoints = [], []
        for item in items:
            kp = provider(item[0])
            if kp is not None:
                self.items.append(item)
                self.keypoints.append(kp)
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        for i, item in enumerate(self.items):
            self.by_pid[int(item[1])].append(i)

    def __len__(self) -> int:
        return len(self.items)

    def _render(self, keypoints, src_size) -> torch.Tensor:
        return render_pose_input(
            keypoints,
            self.size,
            src_size,
            self.sigma,
            self.limb_sigma,
            self.min_visibility,
            self.format,
        )

    def pose_map(self, i: int) -> torch.Tensor:
        return self._render(*self.keypoints[i])

    def render(self, path: str) -> torch.Tensor:
        """The pose map ``(36, H, W)`` of any image with a pose in the provider (e.g. a test
        image)."""
        return self._render(*self.provider(path))

    def __getitem__(self, key) -> dict:
        i, j = key if isinstance(key, tuple | list) else (key, key)
        out = {
            "img": self.transform(read_image(self.items[i][0])),
            "target": self.transform(read_image(self.items[j][0])),
            "pose": self.pose_map(j),
            "pid": int(self.items[i][1]),
        }
        if self.source_pose:
            out["img_pose"] = out["pose"] if i == j else self.pose_map(i)
        if self.masks is not None:
            wh = (self.size[1], self.size[0])
            out["target_mask"] = self.masks(self.items[j][0], wh)
            if self.source_pose:
                out["img_mask"] = out["target_mask"] if i == j else self.masks(self.items[i][0], wh)
        return out


def ordered_pair_count(group_sizes) -> int:
    """How many ordered pairs ``(i, j)``, ``i != j``, of images of one identity there are:
    ``sum_k n_k (n_k - 1)`` over the identities' image counts ``group_sizes`` (the released
    epoch: ``naiq/PN_GAN`` ``script/GAN/dataset.py`` ``Market_DataLoader`` lists
    ``itertools.permutations(images of one identity, 2)`` for every identity)."""
    return int(sum(int(n) * (int(n) - 1) for n in group_sizes))


def pair_epoch_iterations(group_sizes, batch: int) -> int:
    """Iterations of one released epoch of pairs: :func:`ordered_pair_count` // ``batch``
    (``script/GAN/train.py`` ``load_data``: ``DataLoader(..., batch_size=32, drop_last=True)``).

    Raises:
        ValueError: ``batch`` < 1, or fewer ordered pairs than one batch.
    """
    if batch < 1:
        raise ValueError(f"the pair batch must be >= 1, got {batch}")
    pairs = ordered_pair_count(group_sizes)
    if pairs < batch:
        raise ValueError(
            f"{pairs} ordered same-identity pairs cannot fill one batch of {batch} "
            "(GAN.IMS_PER_BATCH)"
        )
    return pairs // batch


def epoch_step_decay_factor(iteration: int, iters_per_epoch: int, decay_epoch: int) -> float:
    """The released generator learning-rate factor at ``iteration`` (0-based): in epoch ``e =
    iteration // iters_per_epoch + 1`` it is ``1 - max(0, e - decay_epoch) / decay_epoch``
    (``script/GAN/train.py`` ``Optimizer``: ``LambdaLR`` stepped once at the start of each
    epoch, ``LR_DECAY`` 10 of ``MAX_EPOCH`` 20: epochs 1-10 at 1, epoch 11 at 0.9, ...,
    epoch 20 at 0), never below 0."""
    e = iteration // max(int(iters_per_epoch), 1) + 1
    d = max(int(decay_epoch), 1)
    return max(0.0, 1.0 - max(0, e - d) / d)


class EpochStepDecay:
    """Picklable ``lr_lambda`` of :func:`epoch_step_decay_factor`."""

    def __init__(self, iters_per_epoch: int, decay_epoch: int):
        self.iters_per_epoch, self.decay_epoch = int(iters_per_epoch), int(decay_epoch)

    def __call__(self, iteration: int) -> float:
        return epoch_step_decay_factor(iteration, self.iters_per_epoch, self.decay_epoch)


def pair_schedule(items, has_pose, batch: int, epochs: int, decay_epoch: int) -> dict:
    """The generator stage's length in released epochs of pairs, from the training ``items``
    (``(path, pid, camid)``) that ``has_pose(path)`` accepts (the released loader keeps the
    images with a pose image): ``{"images", "identities", "pairs", "iters_per_epoch",
    "max_iter" = epochs x iters_per_epoch, "decay_start" = decay_epoch x iters_per_epoch}``.

    Raises:
        ValueError: as :func:`pair_epoch_iterations`.
    """
    sizes: dict[int, int] = defaultdict(int)
    for item in items:
        if has_pose(item[0]):
            sizes[int(item[1])] += 1
    per_epoch = pair_epoch_iterations(sizes.values(), batch)
    return {
        "images": int(sum(sizes.values())),
        "identities": len(sizes),
        "pairs": ordered_pair_count(sizes.values()),
        "iters_per_epoch": per_epoch,
        "max_iter": int(epochs) * per_epoch,
        "decay_start": int(decay_epoch) * per_epoch,
    }


class OrderedPairBatchSampler(Sampler):
    """Batches of ``(i, j)`` keys for :class:`PosePairDataset`, as the released loader draws
    them: an epoch is every ordered pair of two different items of one group
    (``itertools.permutations(group, 2)``; naiq/PN_GAN ``script/GAN/dataset.py``), shuffled
    (``DataLoader(shuffle=True)``), in global batches of ``batch`` without the last partial
    one (``drop_last=True``). Epoch ``e``'s order is drawn from a generator seeded by
    ``(seed, e)``; this process yields its contiguous share (``batch / world`` pairs) of each
    global batch, endlessly, from global batch ``start`` on (a resumed run gets the
    uninterrupted run's batches).

    Raises:
        ValueError: fewer ordered pairs than one batch, or ``batch`` not divisible by
            ``world``.
    """

    def __init__(self, groups, batch: int, seed: int, start: int = 0, rank: int = 0, world=1):
        if batch % world:
            raise ValueError(f"the pair batch {batch} must split evenly over {world} processes")
        self.pairs = [p for g in groups for p in itertools.permutations(g, 2)]
        self.per_epoch = pair_epoch_iterations([len(g) for g in groups], batch)
        self.batch, self.seed, self.start = int(batch), int(seed), int(start)
        self.share = self.batch // world
        self.offset = rank * self.share
        self._epoch, self._order = -1, None

    def order(self, epoch: int) -> torch.Tensor:
        """Epoch ``epoch``'s shuffled pair order (indices into :attr:`pairs`)."""
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(len(self.pairs), generator=g)
        return self._order

    def __iter__(self):
        k = self.start
        while True:
            epoch, b = divmod(k, self.per_epoch)
            lo = b * self.batch + self.offset
            yield [self.pairs[int(i)] for i in self.order(epoch)[lo : lo + self.share]]
            k += 1


def compute_canonical_poses(pose_cfg, train_items, device="cpu") -> dict:
    """The ``POSE.NUM_CANONICAL`` canonical poses of the training images ``train_items``
    (k-means with ``POSE.KMEANS_SEED``, :func:`canonical_poses`), as ``{"centres": (k, 17, 2)
    list in normalised coordinates, "counts": [...], "num_poses", "source"}``; a pose model
    runs on ``device`` (the run's resolved device)."""
    provider = build_keypoint_provider(pose_cfg.SOURCE, device)
    found = [f for f in (provider(item[0]) for item in train_items) if f is not None]
    if not found:
        raise ValueError(f"no training image has a pose in POSE.SOURCE '{pose_cfg.SOURCE}'")
    kps = np.stack([f[0] for f in found])
    sizes = np.asarray([f[1] for f in found], np.float32)
    centres, counts = canonical_poses(kps, sizes, pose_cfg.NUM_CANONICAL, pose_cfg.KMEANS_SEED)
    return {
        "centres": centres.tolist(),
        "counts": counts.tolist(),
        "num_poses": int(len(kps)),
        "source": str(pose_cfg.SOURCE),
    }


def save_canonical_poses(poses: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(poses, f)
    os.replace(tmp, path)


def load_canonical_poses(path: str) -> np.ndarray:
    """The ``(k, 17, 2)`` centres saved by the poses stage.

    Raises:
        FileNotFoundError: the stage has not run (the message names it).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"'{path}' does not exist; run the poses stage first (tools/train_net.py --stage poses)"
        )
    with open(path) as f:
        return np.asarray(json.load(f)["centres"], np.float32)


def canonical_pose_maps(centres: np.ndarray, size, pose_cfg) -> torch.Tensor:
    """The canonical poses rendered as ``(k, C, H, W)`` pose inputs at ``size`` (``C`` = 36
    maps or a 3-channel picture, ``POSE.FORMAT``)."""
    fmt = pose_cfg.get("FORMAT", "maps")
    return torch.stack(
        [
            render_pose_input(c, size, (1, 1), pose_cfg.SIGMA, pose_cfg.LIMB_SIGMA, fmt=fmt)
            for c in centres
        ]
    )
