"""Generation tools: swaps, interpolation, the synthetic-set writer, SSIM, FID, the CLIs.

Most tests use a fake DG-Net whose output is known: the appearance code is the image's colour
(the per-channel maximum of an image that is one colour on a black background), the structure
code is the image's foreground mask, and the decoder paints the structure's mask with the
appearance's colour. Mean 0 / std 1 make "ImageNet-normalised" and [0, 1] the same here.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import generate
import generation_quality
import pytest
import torch
import torchvision.transforms as T
from conftest import CUHK03_MARKET, NO_TEACHER, REPO, make_tiny_market, small_cfg
from PIL import Image
from torch import nn
from torchvision.utils import save_image

from dgnet_plugin.data import MarketLayout
from dgnet_plugin.data.generated import (
    MANIFEST_COLUMNS,
    GeneratedSetError,
    is_complete,
    read_generated_set,
    read_manifest,
)
from dgnet_plugin.evaluation import generation_quality as quality_mod
from dgnet_plugin.evaluation.generation_quality import (
    InceptionWeightsError,
    build_inception,
    fid,
    ssim,
    ssim_diversity,
)
from dgnet_plugin.methods.dgnet.generation import (
    GENERATOR,
    interpolate_appearance,
    interpolate_structure,
    strip,
    swap_grid,
    swap_images,
    write_dataset,
)

H, W = 16, 12
ID = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # mean, std: normalised == [0, 1]
COLOURS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
DEMO = str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml")


class _Reid(nn.Module):
    def forward(self, x, return_all=False):
        return {"code": x.amax(dim=(2, 3))}  # (N, 3): the colour


class _Gen(nn.Module):
    def encode(self, x):
        return (x.sum(1, keepdim=True) > 0.5).float()  # (N, 1, H, W): the mask

    def decode(self, s, f):
        return s * f[:, :, None, None]


class FakeDGNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.reid, self.gen = _Reid(), _Gen()


def mask(i: int) -> torch.Tensor:
    """A distinct rectangle per image: rows 2i..2i+7, columns i+1..i+5."""
    m = torch.zeros(1, H, W)
    m[:, 2 * i : 2 * i + 8, i + 1 : i + 6] = 1
    return m


def image(i: int) -> torch.Tensor:
    return mask(i) * COLOURS[i].view(3, 1, 1)


def painted(app: int, struct: int) -> torch.Tensor:
    return mask(struct) * COLOURS[app].view(3, 1, 1)


# --------------------------------------------------------------------------- swap grid
def test_swap_images_take_appearance_from_the_row_and_structure_from_the_column():
    x = torch.stack([image(i) for i in range(3)])
    out = swap_images(FakeDGNet(), x, batch_size=4)  # 9 outputs in chunks of 4
    assert out.shape == (3, 3, 3, H, W)
    for i in range(3):
        for j in range(3):
            assert torch.equal(out[i, j], painted(i, j)), (i, j)
    assert not torch.equal(out[0, 1], painted(1, 0))  # the roles differ


def test_swap_grid_size_and_layout():
    x = torch.stack([image(i) for i in range(3)])
    grid = swap_grid(x, swap_images(FakeDGNet(), x), *ID)
    p = 2
    assert grid.shape == (3, 4 * (H + p) + p, 4 * (W + p) + p)

    def cell(r, c):
        y0, x0 = p + r * (H + p), p + c * (W + p)
        return grid[:, y0 : y0 + H, x0 : x0 + W]

    assert torch.equal(cell(0, 0), torch.ones(3, H, W))  # blank corner
    for j in range(3):
        assert torch.equal(cell(0, j + 1), image(j))  # header row: structure sources
        assert torch.equal(cell(j + 1, 0), image(j))  # header column: appearance sources
    for i in range(3):
        for j in range(3):
            assert torch.equal(cell(i + 1, j + 1), painted(i, j))


# --------------------------------------------------------------------------- interpolation
def test_appearance_interpolation_keeps_the_structure_and_blends_the_colour():
    a, b = image(0), image(1)
    out = interpolate_appearance(FakeDGNet(), a, b, steps=5)
    assert out.shape == (5, 3, H, W)
    for k, t in enumerate(torch.linspace(0, 1, 5)):
        colour = (1 - t) * COLOURS[0] + t * COLOURS[1]
        assert torch.allclose(out[k], mask(0) * colour.view(3, 1, 1), atol=1e-6)


def test_structure_interpolation_keeps_the_colour_and_blends_the_mask():
    a, b = image(0), image(1)
    out = interpolate_structure(FakeDGNet(), a, b, steps=3)
    assert torch.allclose(out[0], image(0)) and torch.allclose(out[2], painted(0, 1))
    assert torch.allclose(out[1], (0.5 * mask(0) + 0.5 * mask(1)) * COLOURS[0].view(3, 1, 1))


def test_strip_size_and_ends():
    a, b = image(0), image(1)
    s = strip(a, b, interpolate_appearance(FakeDGNet(), a, b, steps=4), *ID)
    assert s.shape == (3, H + 4, 6 * (W + 2) + 2)
    assert torch.equal(s[:, 2 : 2 + H, 2 : 2 + W], a)
    assert torch.equal(s[:, 2 : 2 + H, 2 + 5 * (W + 2) : 2 + 5 * (W + 2) + W], b)


# --------------------------------------------------------------------------- dataset writer
def fake_market(root: Path) -> Path:
    """4 training images (pids 1, 1, 2, 3; cameras 1, 2, 1, 2), one query, one gallery."""
    names = ["0001_c1s1_000001_00", "0001_c2s1_000002_00", "0002_c1s1_000003_00"]
    names.append("0003_c2s1_000004_00")
    (root / "bounding_box_train").mkdir(parents=True)
    for i, n in enumerate(names):
        save_image(image(i), root / "bounding_box_train" / f"{n}.png")
    for split, n in (("query", "0005_c1s1_000001_00"), ("bounding_box_test", "0005_c2s1_0_00")):
        (root / split).mkdir()
        save_image(image(3), root / split / f"{n}.png")
    return root


TF = T.ToTensor()  # the fake images already have the model's size


def run_writer(src, out, **kw):
    kw.setdefault("checkpoint", "fake.pth")
    return write_dataset(FakeDGNet(), str(src), str(out), TF, *ID, per_image=2, **kw)


def test_dataset_writer_names_manifest_and_content(tmp_path):
    src = fake_market(tmp_path / "src")
    out = tmp_path / "gen"
    stats = run_writer(src, out, seed=3, num_workers=2, progress=False)  # 2 reading threads
    assert stats == {"total": 8, "written": 8, "skipped": 0, "real_linked": 0}
    names = sorted(p.name for p in (out / "bounding_box_train").iterdir())
    pid_cam = ["0001_c1", "0001_c2", "0002_c1", "0003_c2"]
    assert names == [f"{pid_cam[i]}s0_{i:06d}_{k:02d}.jpg" for i in range(4) for k in range(2)]
    rows = read_manifest(str(out))  # the core generated-set manifest
    assert len(rows) == 8 and tuple(rows[0]) == MANIFEST_COLUMNS and is_complete(str(out))
    sources = sorted(str(p) for p in (src / "bounding_box_train").iterdir())
    for r in rows:
        serial = int(os.path.basename(r["file"]).split("_")[2])
        assert r["file"].startswith("bounding_box_train/")
        assert r["source"] == sources[serial]  # appearance; file name = its pid/cam
        assert f"{int(r['source_pid']):04d}_c{r['source_camid']}" == pid_cam[serial]
        assert r["target"] in sources and r["target"] != sources[serial]  # structure
        assert (r["generator"], r["checkpoint"]) == (GENERATOR, "fake.pth")
        j = sources.index(r["target"])
        got = TF(Image.open(out / r["file"]))
        assert got.shape == (3, H, W)
        err = {(a, b): (got - painted(a, b)).abs().mean() for a in range(4) for b in range(4)}
        assert min(err, key=err.get) == (serial, j)  # JPEG: the closest of all combinations
    assert (out / "query").is_symlink() and (out / "bounding_box_test").is_symlink()
    ds = MarketLayout(root=str(out), verbose=False)
    assert len(ds.train) == 8 and ds.num_train_pids == 3 and len(ds.query) == 1
    samples = read_generated_set(str(out))  # the offline methods' reader, with provenance
    assert [s["pid"] for s in samples] == [1, 1, 1, 1, 2, 2, 3, 3]
    assert all(s["generated"] and s["generator"] == GENERATOR for s in samples)


def test_dataset_writer_resumes_without_duplicates(tmp_path):
    src = fake_market(tmp_path / "src")
    out = tmp_path / "gen"
    run_writer(src, out, progress=False)
    manifest = (out / "manifest.csv").read_bytes()
    stamp = {p.name: p.stat().st_mtime_ns for p in (out / "bounding_box_train").iterdir()}
    again = run_writer(src, out, progress=False)
    assert again["written"] == 0 and again["skipped"] == 8
    assert (out / "manifest.csv").read_bytes() == manifest
    assert {p.name: p.stat().st_mtime_ns for p in (out / "bounding_box_train").iterdir()} == stamp
    victim = sorted(stamp)[3]
    (out / "bounding_box_train" / victim).unlink()  # lost after its manifest row was written
    third = run_writer(src, out, progress=False)
    assert third["written"] == 1 and (out / "bounding_box_train" / victim).is_file()
    assert (out / "manifest.csv").read_bytes() == manifest
    with pytest.raises(GeneratedSetError, match="checkpoint 'fake.pth'.*'other.pth'"):
        run_writer(src, out, checkpoint="other.pth", progress=False)
    with pytest.raises(GeneratedSetError, match="seed"):  # other structure partners
        run_writer(src, out, seed=1, progress=False)


def test_dataset_writer_include_real_and_no_test_sets(tmp_path):
    src = fake_market(tmp_path / "src")
    out = tmp_path / "gen"
    stats = run_writer(src, out, include_real=True, test_sets="none", progress=False)
    assert stats["real_linked"] == 4 and not (out / "query").exists()
    assert len(list((out / "bounding_box_train").iterdir())) == 12
    run_writer(src, out, include_real=True, test_sets="copy", progress=False)
    assert (out / "query").is_dir() and not (out / "query").is_symlink()
    ds = MarketLayout(root=str(out), verbose=False)
    assert len(ds.train) == 12 and ds.num_train_pids == 3
    assert len(read_manifest(str(out))) == 8  # real images are not listed


# --------------------------------------------------------------------------- SSIM
def test_ssim_identical_is_one_and_constant_images_match_the_formula():
    x = torch.rand(2, 3, 20, 16, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-9)
    a, b = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.8)
    c1 = 0.01**2  # no variance: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    assert ssim(a, b).item() == pytest.approx((0.32 + c1) / (0.68 + c1), abs=1e-6)
    assert ssim(x, 1 - x).max() < 0.5 and ssim(x, x.flip(3)).max() < 1


def test_ssim_diversity_on_tensor_groups_and_on_a_written_folder(tmp_path):
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    same = ssim_diversity([torch.stack([x[0]] * 3)])
    assert same == {"ssim": pytest.approx(1.0, abs=1e-5), "pairs": 3, "groups": 1}
    a, b = torch.full((3, 16, 16), 0.2), torch.full((3, 16, 16), 0.8)
    two = ssim_diversity([torch.stack([a, b]), x[:1]])  # the 1-image group has no pair
    assert two["pairs"] == 1 and two["ssim"] == pytest.approx(0.32 / 0.68, abs=1e-3)
    src = fake_market(tmp_path / "src")
    run_writer(src, tmp_path / "gen", progress=False)
    r = ssim_diversity(str(tmp_path / "gen"))
    assert r["groups"] == 4 and r["pairs"] == 4 and 0 < r["ssim"] <= 1
    assert ssim_diversity(str(tmp_path / "gen"), max_pairs=2)["pairs"] == 2


def test_generated_images_group_by_source_in_the_old_dgnet_manifest_too(tmp_path):
    from dgnet_plugin.evaluation.generation_quality import group_generated

    src = fake_market(tmp_path / "src")
    out = tmp_path / "gen"
    run_writer(src, out, progress=False)
    rows = read_manifest(str(out))
    new = sorted(map(sorted, group_generated(str(out))))
    assert len(new) == 4 and all(len(g) == 2 for g in new)  # 4 appearance images x 2 draws
    # a DG-Net set written before DG-Net used the core writer: appearance_source, ...
    with open(out / "manifest.csv", "w") as f:
        f.write("file,appearance_source,structure_source,checkpoint\n")
        f.writelines(f"{r['file']},{r['source']},{r['target']},x\n" for r in rows)
    assert sorted(map(sorted, group_generated(str(out)))) == new


# --------------------------------------------------------------------------- FID
def tiny_net() -> nn.Module:
    """A small randomly initialised feature extractor: (N, 3, 32, 32) -> [(N, 4, 1, 1)]."""
    torch.manual_seed(0)
    body = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.AdaptiveAvgPool2d(1)
    )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, x):
            return [self.body(x)]

    return Net()


def image_folder(folder: Path, n: int, seed: int, bright: float = 0.0) -> Path:
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    for k in range(n):
        save_image(
            (torch.rand(3, 32, 32, generator=g) * 0.5 + bright).clamp(0, 1), folder / f"{k}.png"
        )
    return folder


def test_fid_on_tiny_folders_with_an_injected_network(tmp_path):
    a = image_folder(tmp_path / "a", 12, 0)
    a2 = image_folder(tmp_path / "a2", 12, 0)  # the same images
    b = image_folder(tmp_path / "b", 12, 1, bright=0.4)
    net = tiny_net()
    same = fid(str(a), str(a2), model=net, size=(32, 32), batch_size=5)
    assert same == pytest.approx(0.0, abs=1e-6)
    diff = fid(str(a), str(b), model=net, size=(32, 32), batch_size=5)
    assert diff > 1e-3 and diff > 1000 * abs(same)


def test_fid_without_weights_offline_is_a_clear_error(tmp_path, monkeypatch):
    from pytorch_fid import inception as pfi

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(pfi, "load_state_dict_from_url", offline)
    a = image_folder(tmp_path / "a", 3, 0)
    with pytest.raises(InceptionWeightsError, match="--inception-weights") as e:
        fid(str(a), str(a))
    assert "weights_path" in str(e.value) and "URLError" in str(e.value)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        fid(str(a), str(a), weights_path=str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(1)}, bad)
    with pytest.raises(InceptionWeightsError, match="bad.pth"):
        build_inception(str(bad))


def test_fid_inception_loads_a_local_weights_file(tmp_path, monkeypatch):
    from pytorch_fid import inception as pfi
    from torchvision.models.inception import Inception3

    # a file with the FID network's own (untrained) weights: build it with loading disabled
    captured = {}
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(
        Inception3, "load_state_dict", lambda self, sd, *a, **k: captured.update(self.state_dict())
    )
    pfi.fid_inception_v3()
    monkeypatch.undo()
    weights = tmp_path / "pt_inception.pth"
    torch.save(captured, weights)

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(pfi, "load_state_dict_from_url", offline)
    net = build_inception(str(weights))  # no download attempted
    assert isinstance(net, pfi.InceptionV3)
    assert torch.equal(net.blocks[0][0].conv.weight, captured["Conv2d_1a_3x3.conv.weight"])


# --------------------------------------------------------------------------- command lines
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained DG-Net of the CPU demo config (64x32), saved like tools/train_net.py."""
    from dgnet_plugin.config import load_cfg_file
    from dgnet_plugin.modeling import build_model
    from dgnet_plugin.utils.checkpoint import Checkpointer

    tmp = tmp_path_factory.mktemp("ckpt")
    cfg = load_cfg_file(DEMO, ["MODEL.BACKBONE.PRETRAIN", "False"])
    torch.manual_seed(0)
    model = build_model(cfg, 5)
    return Checkpointer(model, str(tmp)).save("model_final")


def test_generate_swap_cli_on_real_images(tiny_checkpoint, tmp_path):
    imgs = sorted((CUHK03_MARKET / "bounding_box_train").iterdir())[:3]
    out = tmp_path / "swap.jpg"
    args = ["swap", "--config-file", DEMO, "--weights", tiny_checkpoint, "--device", "cpu"]
    rc = generate.cli([*args, "--images", *map(str, imgs), "--output", str(out)])
    assert rc == 0
    assert Image.open(out).size == (4 * (32 + 2) + 2, 4 * (64 + 2) + 2)


def test_generate_interpolate_and_dataset_cli_on_real_images(tiny_checkpoint, tmp_path):
    imgs = sorted((CUHK03_MARKET / "bounding_box_train").iterdir())
    common = ["--config-file", DEMO, "--weights", tiny_checkpoint, "--device", "cpu"]
    rc = generate.cli(
        ["interpolate", *common, "--image-a", str(imgs[0]), "--image-b", str(imgs[40])]
        + ["--steps", "5", "--output-dir", str(tmp_path / "interp")]
    )
    assert rc == 0
    for kind in ("appearance", "structure"):
        strip_file = tmp_path / "interp" / f"{kind}_{imgs[0].stem}_{imgs[40].stem}.jpg"
        assert Image.open(strip_file).size == (7 * (32 + 2) + 2, 64 + 4)

    src = make_tiny_market(tmp_path / "src", n_train_ids=2, n_test_ids=1)
    out = tmp_path / "dg"
    args = ["dataset", *common, "--source", str(src), "--output-dir", str(out)]
    assert generate.cli([*args, "--num-workers", "0", "--batch-size", "8"]) == 0
    n_real = len(list((src / "bounding_box_train").iterdir()))
    rows = read_manifest(str(out))
    assert len(rows) == n_real
    assert {r["checkpoint"] for r in rows} == {os.path.abspath(tiny_checkpoint)}
    ds = MarketLayout(root=str(out), verbose=False)
    assert len(ds.train) == n_real and ds.num_train_pids == 2
    assert Image.open(out / rows[0]["file"]).size == (32, 64)
    assert generate.cli([*args, "--num-workers", "0"]) == 0  # resumed: nothing new
    assert len(read_manifest(str(out))) == n_real
    missing = ["swap", *common[:2], "--weights", str(tmp_path / "none.pth"), "--images", "x"]
    assert generate.cli(missing) == 2


def test_generation_quality_cli_prints_ours_and_the_papers(tmp_path, monkeypatch, capsys):
    src = fake_market(tmp_path / "src")
    run_writer(src, tmp_path / "gen", progress=False)
    real = image_folder(tmp_path / "real", 8, 0)
    monkeypatch.setattr(quality_mod, "build_inception", lambda *a, **k: tiny_net())
    args = ["--generated", str(tmp_path / "gen"), "--real", str(real), "--num-workers", "0"]
    assert generation_quality.cli(args) == 0
    text = capsys.readouterr().out
    assert "ours: generated vs real" in text and "paper Table 1, reported: DG-Net" in text
    assert "18.24" in text and "0.360" in text and "7.22" in text
    monkeypatch.undo()
    assert generation_quality.cli([*args, "--inception-weights", str(tmp_path / "no.pth")]) == 2
    assert "no.pth" in capsys.readouterr().err
    # --no-fid: SSIM without any Inception weights, FID shown as '-'
    assert generation_quality.cli([*args, "--no-fid"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if "ours: generated" in x][0]
    assert "| -" in line and float(line.rstrip(" |").split("|")[-1]) > 0


# --------------------------------------------------------------------------- training grids
def test_training_saves_swap_grids_on_disk_and_in_tensorboard(tiny_market, tmp_path):
    from dgnet_plugin.engine import build_engine

    cfg = small_cfg(tiny_market, tmp_path, "VIS.NUM_IMAGES", "3", *NO_TEACHER)
    cfg.freeze()
    engine = build_engine(cfg)

    class Recorder:
        def __init__(self):
            self.images = {}

        def add_image(self, tag, img, step):
            self.images[tag] = (tuple(img.shape), step)

    engine.writer = Recorder()
    engine.draw_samples(7)
    for split in ("train", "test"):
        path = tmp_path / "images" / f"swap_{split}_00000007.jpg"
        assert Image.open(path).size == (4 * (32 + 2) + 2, 4 * (64 + 2) + 2)
        assert engine.writer.images[f"swap/{split}"] == ((3, 4 * 66 + 2, 4 * 34 + 2), 7)


# --------------------------------------------------------------------------- what a person sees
def test_reconstruction_and_swap_measures_on_a_generator_whose_output_is_known():
    """FakeDGNet reconstructs each image exactly, and a swap draws image i's rectangle (its
    structure) in image i-1's colour (its appearance)."""
    from dgnet_plugin.methods.dgnet.generation.quality import (
        colour_histogram_distance,
        reconstruction_ssim,
        strong_blur,
        swap_measures,
    )

    x = torch.stack([image(i) for i in range(4)])
    r = reconstruction_ssim(FakeDGNet(), x, *ID)
    assert r["recon_ssim"] == pytest.approx(1.0, abs=1e-9)
    assert r["random_image_ssim"] < 0.9 and r["blurred_copy_ssim"] < 0.99
    s = swap_measures(FakeDGNet(), x, *ID)
    assert s["swap_grey_ssim_to_structure"] > s["swap_grey_ssim_to_appearance"]
    assert s["swap_colour_distance_to_appearance"] < s["swap_colour_distance_to_structure"]
    assert s["swap_chroma_distance_to_appearance"] < s["swap_chroma_distance_to_structure"]
    # by hand: 3 of the 4 swaps; swap 0 (image 0's small rectangle, 18 of the 72 central px,
    # in image 3's yellow) has a mean chroma nearer image 0's red over 18 px than image 3's
    # yellow over 40 px: the measure averages colour over the region, area included
    assert s["swap_chroma_closer_to_appearance"] == 0.75
    # by hand: same pixel counts, one channel's mass moved between two bins -> 2/3 of channels
    a, b = image(0)[None], image(1)[None]  # red vs green rectangles of 40 px each
    assert colour_histogram_distance(a, a).item() == 0.0
    assert colour_histogram_distance(a, b).item() == pytest.approx(2 * 40 / (H * W) / 3)
    assert strong_blur(x).shape == x.shape


def test_central_chroma_by_hand():
    """BT.601 chroma: grey -> (0.5, 0.5), pure red -> (0.5 - 0.168736, 1.0); only the central
    region (rows H/8..7H/8, columns W/4..3W/4) counts."""
    from dgnet_plugin.methods.dgnet.generation.quality import central_chroma, chroma_distance

    grey = torch.full((1, 3, H, W), 0.3)
    red = torch.zeros(1, 3, H, W)
    red[:, 0] = 1.0
    assert central_chroma(grey)[0].tolist() == pytest.approx([0.5, 0.5])
    assert central_chroma(red)[0].tolist() == pytest.approx([0.331264, 1.0])
    assert chroma_distance(red, grey).item() == pytest.approx((0.168736**2 + 0.5**2) ** 0.5)
    border = grey.clone()  # red outside the central region only: no change
    border[:, :, : H // 8] = red[:, :, : H // 8]
    border[:, :, :, : W // 4] = red[:, :, :, : W // 4]
    assert chroma_distance(border, grey).item() == pytest.approx(0.0, abs=1e-6)
    half = grey.clone()  # the central region half red (its left half), half grey
    rows, cols = slice(H // 8, H - H // 8), slice(W // 4, W // 2)
    half[:, :, rows, cols] = red[:, :, rows, cols]
    assert central_chroma(half)[0].tolist() == pytest.approx([0.5 - 0.168736 / 2, 0.75])
