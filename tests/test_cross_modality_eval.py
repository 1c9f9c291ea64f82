"""The visible-infrared protocols (SYSU-MM01, RegDB) on hand-built distances and rank lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgnet_plugin.evaluation.cross_modality import (
    cross_modality_metrics,
    evaluate_regdb,
    evaluate_sysu_mm01,
    format_cross_modality_table,
    load_rand_perm_cam,
    mean_over_trials,
    sysu_gallery_trial,
    sysu_same_location_exclusion,
)


def test_same_location_rule_removes_cam2_gallery_for_cam3_queries_only():
    # 0-based camids: cam3 query = 2, cam6 query = 5; gallery cams 1, 2, 4, 5 -> 0, 1, 3, 4
    remove = sysu_same_location_exclusion([2, 5], [0, 1, 3, 4, 1])
    assert remove.tolist() == [[False, True, False, False, True], [False] * 5]


def test_deduplicated_cmc_counts_identities_not_images():
    # query pid 1; gallery ranked by distance: pid 2, pid 2, pid 1, pid 3
    d = np.array([[0.1, 0.2, 0.3, 0.4]])
    g = np.array([2, 2, 1, 3])
    plain = cross_modality_metrics(d, [1], g)
    dedup = cross_modality_metrics(d, [1], g, deduplicate=True)
    assert plain["Rank-1"] == 0 and plain["Rank-5"] == 1  # first match at rank 3
    assert dedup["Rank-1"] == 0 and dedup["Rank-5"] == 1
    # after deduplication the ranked identities are 2, 1, 3: the match is second
    d2 = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    g2 = np.array([2, 2, 2, 2, 2, 1])
    assert cross_modality_metrics(d2, [1], g2, max_rank=5)["Rank-5"] == 0  # rank 6
    assert cross_modality_metrics(d2, [1], g2, deduplicate=True, max_rank=5)["Rank-5"] == 1
    # AP and INP stay on the full list: one match at rank 3 -> 1/3
    assert dedup["mAP"] == pytest.approx(1 / 3) and dedup["mINP"] == pytest.approx(1 / 3)


def test_ap_and_inp_by_hand():
    # matches at ranks 1 and 4: AP = (1/1 + 2/4) / 2, INP = 2 / 4
    d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    m = cross_modality_metrics(d, [7], [7, 1, 2, 7, 3])
    assert m["mAP"] == pytest.approx(0.75) and m["mINP"] == pytest.approx(0.5)
    assert m["Rank-1"] == 1


def test_exclusion_changes_the_ranking_and_queries_without_match_are_skipped():
    d = np.array([[0.1, 0.5], [0.1, 0.5], [0.1, 0.5]])
    q_pids, g_pids = [1, 1, 9], [2, 1]
    remove = sysu_same_location_exclusion([2, 5, 2], [1, 0])  # gallery: cam2 pid 2, cam1 pid 1
    with_rule = cross_modality_metrics(d, q_pids, g_pids, remove)
    without = cross_modality_metrics(d, q_pids, g_pids)
    assert with_rule["num_valid_queries"] == 2  # pid 9 has no match
    assert with_rule["Rank-1"] == pytest.approx(0.5)  # the cam3 query no longer sees pid 2
    assert without["Rank-1"] == 0
    with pytest.raises(ValueError, match="no query has a true match"):
        cross_modality_metrics(d[:1], [9], g_pids)


def _gallery():
    # 3 identities; cams 1, 2, 4, 5 (0-based 0, 1, 3, 4); 12 images per (pid, cam)
    pids, cams = [], []
    for p in (1, 2, 3):
        for c in (0, 1, 3, 4):
            pids += [p] * 12
            cams += [c] * 12
    return np.array(pids), np.array(cams)


def test_gallery_trials_single_multi_all_indoor_and_seeds():
    g_pids, g_cams = _gallery()
    single = sysu_gallery_trial(g_pids, g_cams, "all", "single", 0)
    assert len(single) == 3 * 4
    assert sorted(zip(g_pids[single], g_cams[single])) == sorted(
        (p, c) for p in (1, 2, 3) for c in (0, 1, 3, 4)
    )
    indoor = sysu_gallery_trial(g_pids, g_cams, "indoor", "single", 0)
    assert set(g_cams[indoor]) == {0, 1} and len(indoor) == 6
    multi = sysu_gallery_trial(g_pids, g_cams, "all", "multi", 0)
    assert len(multi) == 3 * 4 * 10 and len(set(multi)) == len(multi)
    again = sysu_gallery_trial(g_pids, g_cams, "all", "single", 0)
    other = sysu_gallery_trial(g_pids, g_cams, "all", "single", 1)
    assert (single == again).all() and not (single == other).all()
    with pytest.raises(ValueError):
        sysu_gallery_trial(g_pids, g_cams, "outdoor", "single", 0)


def test_official_permutations_pick_the_listed_images(tmp_path):
    from scipy.io import savemat

    g_pids, g_cams = _gallery()
    # perm[cam][pid]: (trials, n) 1-based image numbers; image 5 in trial 0, 2 in trial 1
    cell = np.empty((6, 1), dtype=object)
    for c in range(6):
        inner = np.empty((3, 1), dtype=object)
        for p in range(3):
            inner[p, 0] = np.array([[5] + list(range(1, 5)), [2, 1, 3, 4, 5]], dtype=np.float64)
        cell[c, 0] = inner
    savemat(tmp_path / "rand_perm_cam.mat", {"rand_perm_cam": cell})
    perm = load_rand_perm_cam(str(tmp_path / "rand_perm_cam.mat"))
    t0 = sysu_gallery_trial(g_pids, g_cams, "all", "single", 0, perm)
    t1 = sysu_gallery_trial(g_pids, g_cams, "all", "single", 1, perm)
    # within each (pid, cam) block of 12 images, the 5th (index 4) and the 2nd (index 1)
    assert (t0 % 12 == 4).all() and (t1 % 12 == 1).all() and len(t0) == 12
    savemat(tmp_path / "other.mat", {"x": np.zeros(2)})
    with pytest.raises(ValueError, match="rand_perm_cam"):
        load_rand_perm_cam(str(tmp_path / "other.mat"))


def test_sysu_protocol_on_features_means_and_stds():
    g_pids, g_cams = _gallery()
    # one-hot identity features: every query matches its identity exactly
    gf = torch.nn.functional.one_hot(torch.as_tensor(g_pids) - 1, 3).float()
    q_pids = np.array([1, 2, 3, 1])
    qf = torch.nn.functional.one_hot(torch.as_tensor(q_pids) - 1, 3).float()
    out = evaluate_sysu_mm01(qf, gf, q_pids, g_pids, np.array([2, 2, 5, 5]), g_cams, trials=3)
    assert set(out) == {
        "all-search single-shot",
        "all-search multi-shot",
        "indoor-search single-shot",
        "indoor-search multi-shot",
    }
    for m in out.values():
        assert m["Rank-1"] == 1 and m["Rank-1_std"] == 0 and m["trials"] == 3
        assert m["mAP"] == pytest.approx(1.0)


def test_regdb_both_directions():
    vis_f = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    ir_f = torch.tensor([[1.0, 0.05], [0.9, 0.44]])
    out = evaluate_regdb(vis_f, ir_f, np.array([1, 2]), np.array([1, 2]))
    v2t, t2v = out["visible->thermal"], out["thermal->visible"]
    # cosines: vis1-ir1 .999, vis1-ir2 .898, vis2-ir1 .639, vis2-ir2 .890
    assert v2t["Rank-1"] == 1.0  # vis1 -> ir1, vis2 -> ir2
    assert t2v["Rank-1"] == 0.5  # ir1 -> vis1 right; ir2 -> vis1 (.898 > .890) wrong
    avg = mean_over_trials([out, out])
    assert avg["visible->thermal"]["trials"] == 2 and avg["visible->thermal"]["Rank-1_std"] == 0


def test_table_shows_mean_std_and_labelled_reported_numbers():
    rows = {
        "D2RL (ours)": {
            "sysu_mm01 all-search single-shot": {
                "Rank-1": 12.5,
                "Rank-1_std": 1.25,
                "Rank-10": 50.0,
                "Rank-20": 60.0,
                "mAP": 10.0,
                "mINP": 5.0,
                "trials": 10,
            }
        }
    }
    table = format_cross_modality_table(rows)
    assert "12.50 ± 1.25" in table
    assert "D2RL (reported)" in table and "28.90" in table and "AGW (reported)" in table


def test_official_rand_perm_cam_structure_picks_the_listed_files(tmp_path):
    """``rand_perm_cam.mat`` as the SYSU-MM01 evaluation code documents and public readers
    index it: a (6, 1) cell over cameras; each a (533, 1) cell over the raw identity numbers
    (1-based; empty where the identity has no image in that camera); each a (trials, n)
    double array whose rows are permutations of the image numbers 1..n of ``cam<c>/<pid>/``
    (``0001.jpg`` ...). Trial t takes the first 1 (single-shot) or 10 (multi-shot) numbers of
    row t. The gallery here is laid out as ``SYSUMM01._scan`` lists it: camera, then
    identity, then file name order."""
    from scipy.io import savemat

    rng = np.random.RandomState(7)
    counts = {(6, 1): 3, (6, 2): 12, (6, 4): 1, (10, 1): 11, (10, 5): 2, (533, 2): 4}
    perm = {key: np.stack([rng.permutation(n) + 1 for _ in range(10)]) for key, n in counts.items()}
    paths, g_pids, g_cams = [], [], []
    for cam in (1, 2, 4, 5):
        for pid in (6, 10, 533):
            for k in range(1, counts.get((pid, cam), 0) + 1):
                paths.append(f"cam{cam}/{pid:04d}/{k:04d}.jpg")
                g_pids.append(pid)
                g_cams.append(cam - 1)
    cell = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        inner = np.empty((533, 1), dtype=object)
        for pid in range(1, 534):
            inner[pid - 1, 0] = perm.get((pid, cam), np.zeros((0, 0))).astype(np.float64)
        cell[cam - 1, 0] = inner
    savemat(tmp_path / "rand_perm_cam.mat", {"rand_perm_cam": cell})
    loaded = load_rand_perm_cam(str(tmp_path / "rand_perm_cam.mat"))
    assert len(loaded) == 6 and all(len(c) == 533 for c in loaded)
    paths, g_pids, g_cams = np.array(paths), np.array(g_pids), np.array(g_cams)
    for trial in (0, 3, 9):
        for mode, cams in (("all", (1, 2, 4, 5)), ("indoor", (1, 2))):
            for shot, n_shot in (("single", 1), ("multi", 10)):
                got = sysu_gallery_trial(g_pids, g_cams, mode, shot, trial, loaded)
                want = sorted(
                    f"cam{cam}/{pid:04d}/{int(k):04d}.jpg"
                    for (pid, cam), p in perm.items()
                    if cam in cams
                    for k in p[trial, :n_shot]
                )
                assert sorted(paths[got].tolist()) == want, (trial, mode, shot)
    # identity 6 in camera 2 (12 images): multi-shot takes 10 of them, single-shot 1
    multi = sysu_gallery_trial(g_pids, g_cams, "all", "multi", 0, loaded)
    assert ((g_pids[multi] == 6) & (g_cams[multi] == 1)).sum() == 10
    # a permutation naming an image that is not in the gallery is refused
    keep = paths != "cam1/0006/0003.jpg"
    trial = int(np.flatnonzero(perm[(6, 1)][:, 0] == 3)[0])
    with pytest.raises(ValueError, match="image 3 of identity 6 camera 1"):
        sysu_gallery_trial(g_pids[keep], g_cams[keep], "all", "single", trial, loaded)
