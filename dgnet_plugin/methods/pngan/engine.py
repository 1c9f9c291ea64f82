"""PN-GAN's re-ID stage (Qian et al., ECCV 2018, section 3.3): the re-ID network trained on
real + pose-normalised images (hard labels), evaluated with the test-time fusion of the
features of every test image drawn in the canonical poses."""

from __future__ import annotations

import os

from torch.utils.data import DataLoader

from ...data.pairs import ImageListDataset
from ...engine import ENGINE_REGISTRY
from ...offline_augmentation.cyclegan import load_translator
from ...offline_augmentation.engine import GeneratedReIDTrainer
from .data import canonical_pose_maps, load_canonical_poses
from .fusion import PoseViewsReID, evaluate_pose_fusion
from .stages import pose_gan_dir, poses_path

FEATURE_ROWS = {
    "original": "image feature",
    "avg": "pose-normalised, avg fusion",
    "max": "pose-normalised, max fusion",
    "concat": "pose-normalised, concat fusion",
    "original+avg": "original + pose-normalised (avg)",
    "original+max": "original + pose-normalised (max)",
}


@ENGINE_REGISTRY.register()
class PNGANEngine(GeneratedReIDTrainer):
    """:class:`~dgnet_plugin.offline_augmentation.engine.GeneratedReIDTrainer` on real +
    pose-normalised
    images (``LOSS.LABEL.GENERATED hard``: a pose-normalised image keeps its identity). The
    final table holds the network on the test images alone, the real-only baseline, and the
    rows of ``PNGAN.TEST_FEATURES``: every test image drawn by the generator stage's model in
    the canonical poses, the features of the ``P`` views fused by average or max, alone or
    beside the image's own feature."""

    def row_name(self) -> str:
        if not self.with_generated:
            return "baseline (real images only)"
        return "real + pose-normalised, image feature"

    def extra_rows(self) -> dict:
        rows = super().extra_rows()
        names = [n for n in self.cfg.PNGAN.TEST_FEATURES if n in FEATURE_ROWS]
        if not self.with_generated or not names or not os.path.isfile(poses_path(self.cfg)):
            return rows
        gan, gcfg, _ = load_translator(pose_gan_dir(self.cfg), self.device)
        size = tuple(gcfg.INPUT.SIZE_TEST)
        maps = canonical_pose_maps(load_canonical_poses(poses_path(self.cfg)), size, self.cfg.POSE)
        stats = (tuple(gcfg.INPUT.PIXEL_MEAN), tuple(gcfg.INPUT.PIXEL_STD))
        reid_stats = (tuple(self.cfg.INPUT.PIXEL_MEAN), tuple(self.cfg.INPUT.PIXEL_STD))
        views = PoseViewsReID(self.model.reid, gan.gen, maps, stats, reid_stats).to(self.device)
        n_ids = self.cfg.PNGAN.FUSION_TEST_IDS
        total = max(
            len({it[1] for it in t["query"].dataset.items}) for t in self.test_sets.values()
        )
        subset = 0 < n_ids < total
        test_sets = subset_test_sets(self.test_sets, n_ids) if subset else self.test_sets
        results = evaluate_pose_fusion(
            views, test_sets, self.device, self.cfg.TEST, names, self.cfg.PNGAN.FUSED_L2
        )
        where = f", first {n_ids} test identities" if subset else ""
        for name in names:
            rows[f"{FEATURE_ROWS[name]}{where}"] = results[name]
        return rows


def subset_test_sets(test_sets: dict, n_ids: int) -> dict:
    """The test sets restricted to their ``n_ids`` lowest query identities (query and
    gallery; the gallery's distractors, pid <= 0, are kept)."""
    out = {}
    for name, loaders in test_sets.items():
        ids = sorted({it[1] for it in loaders["query"].dataset.items})[:n_ids]
        keep = set(ids)
        out[name] = {}
        for split, loader in loaders.items():
            ds = loader.dataset
            items = [it for it in ds.items if it[1] in keep or (split == "gallery" and it[1] <= 0)]
            out[name][split] = DataLoader(
                ImageListDataset(items, ds.transform, mode=ds.mode),
                batch_size=loader.batch_size,
                num_workers=loader.num_workers,
            )
    return out
