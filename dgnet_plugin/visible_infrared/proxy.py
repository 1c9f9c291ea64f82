"""A visible-infrared **proxy** from real CUHK03 crops, in the SYSU-MM01 and RegDB layouts,
and the real SYSU-MM01 sample crops (``vi_reid_samples``) in the same layouts.

No real infrared training set is available offline. The proxy keeps CUHK03's real people
and its two camera views: view 1 stays visible (RGB), view 2 becomes "infrared" through
:func:`proxy_infrared`. It is a stand-in to exercise training and the protocols; numbers on
it are not SYSU-MM01 or RegDB numbers, and every folder it writes says so (``PROXY.txt``).

CUHK03 view 1 slot ``k`` goes to visible camera ``(1, 2, 4, 5)[k % 4]`` and view 2 slot ``k``
to infrared camera ``(3, 6)[k % 2]``, so cam2 and cam3 both occur and SYSU-MM01's
same-location rule is exercised. Identities are taken in CUHK03 order: the first
``num_train`` for training (``exp/train_id.txt``, ``val_id.txt`` left empty), the next
``num_test`` for testing. RegDB: the same identities, view 1 -> ``Visible/``, view 2 ->
``Thermal/``, and 10 split trials, each a seeded random half of the identities.

Every builder is idempotent: a folder whose ``PROXY.txt`` records the same settings is kept.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random

from PIL import Image, ImageFilter, ImageOps

from ..data.datasets import DatasetNotFoundError, read_image

logger = logging.getLogger(__name__)

VISIBLE_CAMS, INFRARED_CAMS = (1, 2, 4, 5), (3, 6)
#: the channel mix of :func:`proxy_infrared` (R, G, B)
IR_MIX = (0.6, 0.3, 0.1)


def proxy_infrared(img: Image.Image) -> Image.Image:
    """The documented "infrared" rendering of an RGB crop (a proxy, not a physical model):

    1. one channel ``0.6 R + 0.3 G + 0.1 B`` (near-infrared reflectance of skin and dyed
       cloth follows red more than blue, so the mix leans to red; ITU-R 601 luma would be
       0.299 / 0.587 / 0.114);
    2. autocontrast with 1 % of the histogram clipped at each end (active IR illumination
       gives a stretched, high-contrast image);
    3. Gaussian blur of radius 0.8 px (infrared sensors are softer).

    Returns a PIL ``L`` image of the same size.
    """
    w = IR_MIX
    mono = img.convert("RGB").convert("L", matrix=(w[0], w[1], w[2], 0))
    return ImageOps.autocontrast(mono, cutoff=1).filter(ImageFilter.GaussianBlur(0.8))


def _marker_ok(folder: str, settings: dict) -> bool:
    path = os.path.join(folder, "PROXY.txt")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        first = f.readline().strip()
    return first == json.dumps(settings, sort_keys=True)


def _write_marker(folder: str, settings: dict, text: str) -> None:
    with open(os.path.join(folder, "PROXY.txt"), "w") as f:
        f.write(json.dumps(settings, sort_keys=True) + "\n" + text + "\n")


def _cuhk03_people(source: str, count: int) -> list[tuple[int, list[str], list[str]]]:
    """``[(person_id, view-1 files, view-2 files)]`` of the first ``count`` CUHK03 people
    with images in both views (``cuhk03_64x128/labels.csv``)."""
    labels = os.path.join(source, "labels.csv")
    if not os.path.isfile(labels):
        raise DatasetNotFoundError(
            f"'{labels}' is missing: DATASETS.VI_PROXY.SOURCE must be the cuhk03_64x128 folder "
            "of ../shared/data (images/IIII_SS.jpg and labels.csv)"
        )
    views: dict[int, tuple[list[str], list[str]]] = {}
    with open(labels, newline="") as f:
        for row in csv.DictReader(f):
            pid, view = int(row["person_id"]), int(row["camera_view"])
            views.setdefault(pid, ([], []))[view - 1].append(
                os.path.join(source, "images", row["file"])
            )
    people = [(p, sorted(v1), sorted(v2)) for p, (v1, v2) in sorted(views.items()) if v1 and v2]
    if len(people) < count:
        raise ValueError(f"{source}: {len(people)} people with both views, {count} asked for")
    return people[:count]


def build_sysu_proxy(source: str, out: str, num_train: int, num_test: int) -> str:
    """Write the SYSU-MM01-layout proxy (module docstring) to ``out``; returns ``out``."""
    settings = {
        "layout": "sysu_mm01",
        "source": os.path.abspath(source),
        "num_train": num_train,
        "num_test": num_test,
    }
    if _marker_ok(out, settings):
        return out
    people = _cuhk03_people(source, num_train + num_test)
    os.makedirs(os.path.join(out, "exp"), exist_ok=True)
    for new_id, (_, v1, v2) in enumerate(people, 1):
        for files, cams, infrared in ((v1, VISIBLE_CAMS, False), (v2, INFRARED_CAMS, True)):
            for k, src in enumerate(files):
                cam = cams[k % len(cams)]
                folder = os.path.join(out, f"cam{cam}", f"{new_id:04d}")
                os.makedirs(folder, exist_ok=True)
                img = read_image(src)
                (proxy_infrared(img) if infrared else img).save(
                    os.path.join(folder, f"{k + 1:04d}.jpg"), quality=95
                )
    for c in range(1, 7):
        os.makedirs(os.path.join(out, f"cam{c}"), exist_ok=True)
    ids = list(range(1, len(people) + 1))
    for name, part in (
        ("train_id", ids[:num_train]),
        ("val_id", []),
        ("test_id", ids[num_train:]),
        ("available_id", ids),
    ):
        with open(os.path.join(out, "exp", f"{name}.txt"), "w") as f:
            f.write(",".join(str(i) for i in part) + "\n")
    _write_marker(
        out,
        settings,
        (
            "PROXY, not SYSU-MM01: real CUHK03 crops in the SYSU-MM01 layout; view 2 rendered as "
            "'infrared' by dgnet_plugin.visible_infrared.proxy.proxy_infrared (cam3, cam6). "
            "Original CUHK03 "
            f"person ids, in order: {[p for p, _, _ in people]}"
        ),
    )
    logger.info(
        "Wrote the SYSU-MM01-layout proxy (%d + %d identities) to %s", num_train, num_test, out
    )
    return out


def build_regdb_proxy(source: str, out: str, num_ids: int, trials: int = 10) -> str:
    """Write the RegDB-layout proxy (module docstring) to ``out``: ``num_ids`` identities, each
    trial a seeded (seed = trial) random half for training; returns ``out``."""
    settings = {
        "layout": "regdb",
        "source": os.path.abspath(source),
        "num_ids": num_ids,
        "trials": trials,
    }
    if _marker_ok(out, settings):
        return out
    people = _cuhk03_people(source, num_ids)
    files = {"visible": {}, "thermal": {}}
    for new_id, (_, v1, v2) in enumerate(people, 1):
        for mod, srcs, letter in (("visible", v1, "v"), ("thermal", v2, "t")):
            folder = os.path.join(out, mod.capitalize(), str(new_id))
            os.makedirs(folder, exist_ok=True)
            names = []
            for k, src in enumerate(srcs):
                name = f"proxy_front_{letter}_{k + 1:05d}_{new_id}.bmp"
                img = read_image(src)
                (proxy_infrared(img) if mod == "thermal" else img).save(os.path.join(folder, name))
                names.append(f"{mod.capitalize()}/{new_id}/{name}")
            files[mod][new_id] = names
    _write_regdb_index(out, files, trials)
    _write_marker(
        out,
        settings,
        (
            "PROXY, not RegDB: real CUHK03 crops in the RegDB layout; Thermal/ holds view 2 "
            "rendered by dgnet_plugin.visible_infrared.proxy.proxy_infrared"
        ),
    )
    logger.info("Wrote the RegDB-layout proxy (%d identities) to %s", num_ids, out)
    return out


def _write_regdb_index(out: str, files: dict, trials: int, all_test: bool = False) -> None:
    ids = sorted(files["visible"])
    os.makedirs(os.path.join(out, "idx"), exist_ok=True)
    for t in range(1, trials + 1):
        order = list(ids)
        random.Random(t).shuffle(order)
        half = [] if all_test else sorted(order[: len(ids) // 2])
        test = sorted(set(ids) - set(half))
        for split, part in (("train", half), ("test", test)):
            for mod in ("visible", "thermal"):
                with open(os.path.join(out, "idx", f"{split}_{mod}_{t}.txt"), "w") as f:
                    for label, pid in enumerate(part):
                        for rel in files[mod][pid]:
                            f.write(f"{rel} {label}\n")


def _sample_rows(folder: str) -> list[dict]:
    path = os.path.join(folder, "labels.csv")
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"'{path}' is missing (vi_reid_samples: see its README)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def build_sysu_from_samples(samples: str, out: str) -> str:
    """The real SYSU-MM01 crops of ``vi_reid_samples/sysu_mm01_example`` (5 people, 2 images
    per camera 1-6) in the SYSU-MM01 layout, every identity a test identity (symbolic links,
    original cameras); returns ``out``."""
    src = os.path.join(samples, "sysu_mm01_example")
    settings = {"layout": "sysu_mm01", "samples": os.path.abspath(src)}
    if _marker_ok(out, settings):
        return out
    rows = _sample_rows(src)
    counters: dict = {}
    for r in sorted(rows, key=lambda r: r["file"]):
        pid, cam = int(r["person_id"]), int(r["camera"])
        folder = os.path.join(out, f"cam{cam}", f"{pid:04d}")
        os.makedirs(folder, exist_ok=True)
        k = counters[pid, cam] = counters.get((pid, cam), 0) + 1
        ext = os.path.splitext(r["file"])[1]
        link = os.path.join(folder, f"{k:04d}{ext}")
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(src, r["file"])), link)
    for c in range(1, 7):
        os.makedirs(os.path.join(out, f"cam{c}"), exist_ok=True)
    os.makedirs(os.path.join(out, "exp"), exist_ok=True)
    ids = sorted({int(r["person_id"]) for r in rows})
    for name, part in (("train_id", []), ("val_id", []), ("test_id", ids), ("available_id", ids)):
        with open(os.path.join(out, "exp", f"{name}.txt"), "w") as f:
            f.write(",".join(str(i) for i in part) + "\n")
    _write_marker(out, settings, "Real SYSU-MM01 crops (vi_reid_samples/sysu_mm01_example)")
    return out


def build_regdb_from_samples(samples: str, out: str) -> str:
    """The real crops of ``vi_reid_samples/sysu_mm01_aligngan_figure`` (5 people, 4 visible +
    4 infrared each, cameras unknown) in the RegDB layout, every identity a test identity in
    each of the 10 trial files (symbolic links); returns ``out``."""
    src = os.path.join(samples, "sysu_mm01_aligngan_figure")
    settings = {"layout": "regdb", "samples": os.path.abspath(src)}
    if _marker_ok(out, settings):
        return out
    files = {"visible": {}, "thermal": {}}
    for r in sorted(_sample_rows(src), key=lambda r: r["file"]):
        pid = int(r["person_id"])
        mod = "visible" if r["modality"] == "visible" else "thermal"
        folder = os.path.join(out, mod.capitalize(), str(pid))
        os.makedirs(folder, exist_ok=True)
        link = os.path.join(folder, r["file"])
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(src, r["file"])), link)
        files[mod].setdefault(pid, []).append(f"{mod.capitalize()}/{pid}/{r['file']}")
    _write_regdb_index(out, files, 10, all_test=True)
    _write_marker(out, settings, "Real SYSU-MM01 crops (vi_reid_samples/sysu_mm01_aligngan_figure)")
    return out


def ensure_vi_data(cfg) -> None:
    """Build what ``DATASETS.VI_PROXY`` asks for (a method's ``before_training`` step):
    with ``SOURCE`` set, the SYSU-MM01- and RegDB-layout proxies in ``ROOT/SYSU-MM01-proxy``
    and ``ROOT/RegDB-proxy``; with ``SAMPLES`` set, the real sample crops in
    ``ROOT/SYSU-MM01-samples`` and ``ROOT/RegDB-samples``. Idempotent; nothing when both are
    empty."""
    p = cfg.DATASETS.VI_PROXY
    if p.SOURCE:
        build_sysu_proxy(p.SOURCE, os.path.join(p.ROOT, "SYSU-MM01-proxy"), *p.NUM_IDS)
        build_regdb_proxy(p.SOURCE, os.path.join(p.ROOT, "RegDB-proxy"), sum(p.NUM_IDS))
    if p.SAMPLES:
        build_sysu_from_samples(p.SAMPLES, os.path.join(p.ROOT, "SYSU-MM01-samples"))
        build_regdb_from_samples(p.SAMPLES, os.path.join(p.ROOT, "RegDB-samples"))
