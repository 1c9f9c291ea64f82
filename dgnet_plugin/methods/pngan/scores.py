"""Two figures of how well PN-GAN's generator re-poses, on a fixed held-out set (not in the
paper; the demo's check that the pose input is used):

- **transfer L1**: ``E|G(x_i, p_j) - x_j|`` over pairs ``(x_i, x_j)`` of one identity from the
  two cameras, beside ``E|x_i - x_j|`` (copying the source) and ``E|mean - x_j|`` (drawing the
  average training image). Under this L1 the average image beats the source itself (CUHK03 at
  64x32: 0.32 against 0.40), so a generator that re-poses should go below the mean image's
  figure; one that only copies sits near the source's.
- **pose sensitivity**: ``E|G(x, c_k) - G(x, c_l)|`` over the pairs ``k < l`` of canonical
  poses for one ``x``, averaged over the sources: 0 when the pose input is ignored;
- **source sensitivity**: ``E|G(x_i, c_k) - G(x_{i+1}, c_k)|``, two different people
  (consecutive sources) in the same canonical pose, averaged over the poses, beside the
  same L1 between the real sources (``source_spread``): 0 when the generator draws every
  person alike (a pose template without the person's appearance).

Images ``(N, 3, H, W)`` in ``[-1, 1]`` (the generator's range); L1 in those units (per
element). With foreground masks of the targets the same L1 figures are also given on the
person alone (``*_fg``: the masks' weighted mean), since the corridor background is most of
an image's pixels.
"""

from __future__ import annotations

import itertools

import torch

from ...data.datasets import read_image


def heldout_pairs(items, provider, n: int = 64) -> list[tuple[str, str]]:
    """Up to ``n`` pairs ``(source, target)`` of image paths, one per identity (the lowest
    pids of ``items`` first), source from the lowest camera and target from another camera,
    both with a pose in ``provider`` (cross-camera: the poses differ). ``items``: ``[(path,
    pid, camid, ...)]``, e.g. a test set's query list (identities the generator never saw)."""
    by_pid: dict[int, dict[int, str]] = {}
    for item in sorted(items, key=lambda t: (int(t[1]), int(t[2]), t[0])):
        if provider(item[0]) is not None:
            by_pid.setdefault(int(item[1]), {}).setdefault(int(item[2]), item[0])
    pairs = []
    for _, cams in sorted(by_pid.items()):
        if len(cams) >= 2:
            c = sorted(cams)
            pairs.append((cams[c[0]], cams[c[1]]))
        if len(pairs) == n:
            break
    return pairs


def mean_image(paths, transform, step: int = 4) -> torch.Tensor:
    """The pixel-wise mean ``(3, H, W)`` of every ``step``-th image of ``paths`` through
    ``transform`` (the generator's: ``[-1, 1]``)."""
    paths = list(paths)[::step]
    if not paths:
        raise ValueError("mean_image: no images")
    total = None
    for p in paths:
        x = transform(read_image(p))
        total = x.clone() if total is None else total.add_(x)
    return total / len(paths)


def _l1(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor | None = None) -> float:
    d = (a - b).abs().mean(1, keepdim=True)  # (N, 1, H, W)
    if w is None:
        return float(d.mean())
    return float((d * w).sum() / w.sum().clamp_min(1e-8))


@torch.no_grad()
def pose_transfer_scores(
    generate,
    source: torch.Tensor,
    target: torch.Tensor,
    target_pose: torch.Tensor,
    mean: torch.Tensor,
    canonical: torch.Tensor,
    target_mask: torch.Tensor | None = None,
) -> dict[str, float]:
    """The figures of the module docstring.

    Args:
        generate: ``(x (N, 3, H, W), pose (N, P, H, W)) -> (N, 3, H, W)``, all in ``[-1, 1]``.
        source, target: ``(N, 3, H, W)`` pairs of one identity; ``target_pose``: the targets'
            pose maps ``(N, P, H, W)``.
        mean: the average training image ``(3, H, W)``.
        canonical: the canonical pose maps ``(K, P, H, W)``, ``K >= 2``.
        target_mask: optional person masks of the targets ``(N, 1, H, W)`` in ``[0, 1]``.

    Returns ``{transfer_l1, source_l1, mean_l1, pose_sensitivity}`` (+ ``transfer_l1_fg``,
    ``source_l1_fg``, ``mean_l1_fg`` with a mask; + ``source_sensitivity``,
    ``source_spread`` with ``N >= 2``).
    """
    fake = generate(source, target_pose)
    means = mean.to(target)[None].expand_as(target)
    out = {
        "transfer_l1": _l1(fake, target),
        "source_l1": _l1(source, target),
        "mean_l1": _l1(means, target),
    }
    if target_mask is not None:
        out["transfer_l1_fg"] = _l1(fake, target, target_mask)
        out["source_l1_fg"] = _l1(source, target, target_mask)
        out["mean_l1_fg"] = _l1(means, target, target_mask)
    n, k = source.shape[0], canonical.shape[0]
    views = [generate(source, canonical[i : i + 1].expand(n, -1, -1, -1)) for i in range(k)]
    diffs = [_l1(views[a], views[b]) for a, b in itertools.combinations(range(k), 2)]
    out["pose_sensitivity"] = sum(diffs) / len(diffs)
    if n >= 2:  # different people (source i and i + 1) in the same canonical pose
        out["source_sensitivity"] = sum(_l1(v[:-1], v[1:]) for v in views) / k
        out["source_spread"] = _l1(source[:-1], source[1:])
    return out
