"""Official DG-Net release -> dgnet_plugin checkpoint, export to torchreid, FeatureExtractor.

The official files are not downloadable here, so the tests build state dicts with the
official key names and shapes (NVlabs/DG-Net ``networks.py`` / ``reIDmodel.py``, written out
below independently of the converter) from a random dgnet_plugin model, plus the extras of the
release: non-local blocks, AdaIN dummy buffers and the backbone's ImageNet ``fc``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re

import numpy as np
import pytest
import torch
from conftest import CUHK03_MARKET, REPO
from PIL import Image
from torch.utils.data import DataLoader

import dgnet_plugin
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.data.datasets import read_image
from dgnet_plugin.data.pairs import ImageListDataset
from dgnet_plugin.data.transforms import build_transforms
from dgnet_plugin.evaluation.features import extract_features
from dgnet_plugin.methods.dgnet import DGNet
from dgnet_plugin.methods.dgnet.convert import convert_official_dgnet, convert_official_teacher
from dgnet_plugin.methods.dgnet.teacher import load_teacher
from dgnet_plugin.methods.ide import IDEBaseline
from dgnet_plugin.utils import torchreid_compat as tr

NUM_CLASSES = 751


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert_tool = importlib.import_module("dgnet_plugin.methods.dgnet.convert_cli")
export_tool = _load_tool("export")


def _perturb(model: torch.nn.Module) -> torch.nn.Module:
    """Make every tensor distinct (zero biases, unit BN stats would hide a swapped mapping)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(1234)
    return model.eval()


def _nonlocal(prefix: str, dim: int) -> dict[str, torch.Tensor]:
    """An official ``NonlocalBlock(dim)``."""
    out = {}
    for name, c_out in (("query_conv", dim // 8), ("key_conv", dim // 8), ("value_conv", dim)):
        out[f"{prefix}{name}.weight"] = torch.randn(c_out, dim, 1, 1)
        out[f"{prefix}{name}.bias"] = torch.randn(c_out)
    out[f"{prefix}gamma"] = torch.zeros(1)
    return out


def to_official(sd: dict[str, torch.Tensor], extras: bool = True):
    """Our ``DGNet.state_dict()`` -> the official ``(gen, id, dis)`` state dicts.

    With ``extras``, like the released model: a non-local block after the decoder's ResBlocks
    (shifting the later layer indices by one), non-local blocks inside the structure encoder's
    ResBlocks, one at the end of every discriminator scale, AdaIN running buffers, ImageNet fc.
    """
    shift = 1 if extras else 0
    aspp = {"1": "conv6", "2": "conv12", "3": "conv18"}
    rules = [
        (r"reid\.backbone\.(.+)", lambda m: ("id", f"model.{m[1]}")),
        (
            r"reid\.(classifier|classifier_fine)\.bottleneck\.(\d)\.(.+)",
            lambda m: ("id", f"{_head(m[1])}.add_block.{m[2]}.{m[3]}"),
        ),
        (
            r"reid\.(classifier|classifier_fine)\.classifier\.(.+)",
            lambda m: ("id", f"{_head(m[1])}.classifier.0.{m[2]}"),
        ),
        (
            r"gen\.encoder\.body\.([0-3])\.conv\.(.+)",
            lambda m: ("gen", f"enc_content.model.{m[1]}.conv.{m[2]}"),
        ),
        (
            r"gen\.encoder\.body\.4\.blocks\.(\d)\.conv([12])\.conv\.(.+)",
            lambda m: (
                "gen",
                f"enc_content.model.4.model.{m[1]}.model.{int(m[2]) - 1}.conv.{m[3]}",
            ),
        ),
        (
            r"gen\.encoder\.aspp\.branches\.0\.conv\.(.+)",
            lambda m: ("gen", f"enc_content.model.5.conv1.conv.{m[1]}"),
        ),
        (
            r"gen\.encoder\.aspp\.branches\.([123])\.([01])\.conv\.(.+)",
            lambda m: ("gen", f"enc_content.model.5.{aspp[m[1]]}.{m[2]}.conv.{m[3]}"),
        ),
        (
            r"gen\.encoder\.aspp\.fuse\.conv\.(.+)",
            lambda m: ("gen", f"enc_content.model.5.fuse.conv.{m[1]}"),
        ),
        (
            r"gen\.decoder\.res\.blocks\.(\d)\.conv([12])\.conv\.(.+)",
            lambda m: ("gen", f"dec.model.1.model.{m[1]}.model.{int(m[2]) - 1}.conv.{m[3]}"),
        ),
        (
            r"gen\.decoder\.up\.([13])\.(conv|norm)\.(.+)",
            lambda m: ("gen", f"dec.model.{2 + int(m[1]) + shift}.{m[2]}.{m[3]}"),
        ),
        (
            r"gen\.decoder\.out\.([012])\.conv\.(.+)",
            lambda m: ("gen", f"dec.model.{6 + int(m[1]) + shift}.conv.{m[2]}"),
        ),
        (
            r"gen\.mlp_([wb])\.(\d)\.net\.([024])\.(.+)",
            lambda m: ("gen", f"mlp_{m[1]}{int(m[2]) + 1}.model.{int(m[3]) // 2}.fc.{m[4]}"),
        ),
        (
            r"dis\.scales\.(\d)\.([0-4])\.conv\.(.+)",
            lambda m: ("dis", f"cnns.{m[1]}.{m[2]}.conv.{m[3]}"),
        ),
        (
            r"dis\.scales\.(\d)\.5\.blocks\.(\d)\.conv([12])\.conv\.(.+)",
            lambda m: ("dis", f"cnns.{m[1]}.{5 + int(m[2])}.model.{int(m[3]) - 1}.conv.{m[4]}"),
        ),
        (
            r"dis\.scales\.(\d)\.6\.(weight|bias)",
            lambda m: ("dis", f"cnns.{m[1]}.{9 + shift}.{m[2]}"),
        ),
    ]
    out = {"gen": {}, "id": {}, "dis": {}}
    for key, value in sd.items():
        hits = [fn(m) for pattern, fn in rules if (m := re.fullmatch(pattern, key))]
        assert len(hits) == 1, f"test mapping covers '{key}' {len(hits)} times"
        file, official = hits[0]
        out[file][official] = value
    extra = {"gen": {}, "id": {}, "dis": {}}
    if extras:
        extra["id"]["model.fc.weight"] = torch.randn(1000, 2048)
        extra["id"]["model.fc.bias"] = torch.randn(1000)
        for j in range(4):
            for k in range(2):
                p = f"dec.model.1.model.{j}.model.{k}.norm."
                extra["gen"][p + "running_mean"] = torch.zeros(128)
                extra["gen"][p + "running_var"] = torch.ones(128)
            extra["gen"].update(_nonlocal(f"enc_content.model.4.model.{j}.nonloc.", 64))
        extra["gen"].update(_nonlocal("dec.model.2.", 128))
        for s in range(3):
            extra["dis"].update(_nonlocal(f"cnns.{s}.9.", 64))
    for file in out:
        out[file].update(extra[file])
    return out["gen"], out["id"], out["dis"], extra


def _head(ours: str) -> str:
    return {"classifier": "classifier1", "classifier_fine": "classifier2"}[ours]


@pytest.fixture(scope="module")
def dgnet_cfg():
    return load_cfg_file(
        str(REPO / "configs" / "dgnet_r50.yml"), ["MODEL.BACKBONE.PRETRAIN", "False"], freeze=False
    )


@pytest.fixture(scope="module")
def ours(dgnet_cfg):
    torch.manual_seed(0)
    return _perturb(DGNet.from_config(dgnet_cfg, NUM_CLASSES))


@pytest.fixture(scope="module")
def ours_sd(ours):
    return ours.state_dict()


@pytest.fixture(scope="module")
def official(ours_sd):
    return to_official(ours_sd)


@pytest.fixture(scope="module")
def teacher_cfg():
    return load_cfg_file(
        str(REPO / "configs" / "teacher_r50.yml"),
        ["MODEL.BACKBONE.PRETRAIN", "False"],
        freeze=False,
    )


@pytest.fixture(scope="module")
def teacher_sd(teacher_cfg):
    torch.manual_seed(1)
    return _perturb(IDEBaseline.from_config(teacher_cfg, NUM_CLASSES)).state_dict()


def teacher_to_official(sd):
    out = {}
    for key, value in sd.items():
        key = re.sub(r"^backbone\.", "model.", key)
        key = re.sub(r"^classifier\.bottleneck\.", "classifier.add_block.", key)
        key = re.sub(r"^classifier\.classifier\.", "classifier.classifier.0.", key)
        out[key] = value
    out["model.fc.weight"] = torch.randn(1000, 2048)
    out["model.fc.bias"] = torch.randn(1000)
    return out


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory, official, teacher_sd):
    """The CLI run once on an official-layout release folder (``outputs/<name>/checkpoints``
    + ``models/best``): ``{rc, printed, dgnet, teacher}``."""
    root = tmp_path_factory.mktemp("official")
    ckpt = root / "outputs" / "E0.5new_reid0.5_w30000" / "checkpoints"
    ckpt.mkdir(parents=True)
    gen, id_, dis, _ = official
    for name, sd in (("gen", gen), ("id", id_), ("dis", dis)):
        torch.save({"a": sd}, ckpt / f"{name}_00100000.pt")
    best = root / "models" / "best"
    best.mkdir(parents=True)
    torch.save(teacher_to_official(teacher_sd), best / "net_last.pth")
    (best / "opts.yaml").write_text("name: best\nstride: 1\nlr: 0.05\n")
    out = {
        "dgnet": root / "converted" / "dgnet" / "converted.pth",
        "teacher": root / "converted" / "teacher" / "model_final.pth",
    }
    argv = ["--checkpoint-dir", str(ckpt.parent), "--iteration", "100000"]  # finds checkpoints/
    argv += ["--teacher", str(best / "net_last.pth"), "--output", str(out["dgnet"])]
    argv += ["--teacher-output", str(out["teacher"])]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out["rc"] = convert_tool.main(argv)
    out["printed"] = buf.getvalue()
    return out


# ------------------------------------------------------------------------------ converter
def test_converted_release_loads_strict_into_dgnet_with_equal_tensors(dgnet_cfg, ours_sd, official):
    gen, id_, dis, extra = official
    state, report = convert_official_dgnet({"a": gen}, {"a": id_}, {"a": dis}, dgnet_cfg)
    fresh = DGNet.from_config(dgnet_cfg, NUM_CLASSES)
    fresh.load_state_dict(state, strict=True)
    loaded = fresh.state_dict()
    assert list(loaded) == list(ours_sd)
    for key, value in ours_sd.items():
        assert torch.equal(loaded[key], value), key

    dropped = {(src, key) for src, key, _ in report.dropped}
    assert dropped == {(src, key) for src in extra for key in extra[src]}
    assert not report.filled and len(report.mapped) == len(ours_sd)
    groups = {pattern: count for pattern, count, _ in report.dropped_groups()}
    assert groups == {
        "id: model.fc.*": 2,  # ImageNet fc
        "gen: enc_content.model.*.model.*.nonloc.*": 4 * 7,  # non-local inside 4 ResBlocks
        "gen: dec.model.*.model.*.model.*.norm.running_*": 8 * 2,  # 8 AdaIN layers
        "gen: dec.model.*.*": 7,  # the decoder's non-local block
        "dis: cnns.*.*.*": 3 * 7,  # one non-local block per scale
    }
    assert "non-local" in report.format() and "AdaIN" in report.format()


def test_bare_state_dicts_without_num_batches_tracked(dgnet_cfg, ours_sd):
    # an older release: no non-local extras, bare dicts, DataParallel prefix, PyTorch < 0.4.1
    gen, id_, dis, _ = to_official(ours_sd, extras=False)
    id_ = {f"module.{k}": v for k, v in id_.items() if not k.endswith("num_batches_tracked")}
    state, report = convert_official_dgnet(gen, id_, dis)  # default cfg = official recipe
    assert list(state) == list(ours_sd) and not report.dropped
    filled = [k for k, _ in report.filled]
    assert filled and all(k.endswith("num_batches_tracked") for k in filled)
    assert all(int(state[k]) == 0 for k in filled)
    assert torch.equal(
        state["reid.backbone.layer4.2.bn3.running_var"],
        ours_sd["reid.backbone.layer4.2.bn3.running_var"],
    )


def test_shape_mismatch_names_both_keys_and_shapes(dgnet_cfg, official):
    gen, id_, dis, _ = official
    gen = dict(gen, **{"mlp_w1.model.0.fc.weight": torch.zeros(512, 1024)})
    with pytest.raises(ValueError) as e:
        convert_official_dgnet({"a": gen}, {"a": id_}, {"a": dis}, dgnet_cfg)
    msg = str(e.value)
    for part in (
        "mlp_w1.model.0.fc.weight",
        "(512, 1024)",
        "gen.mlp_w.0.net.0.weight",
        "(512, 2048)",
    ):
        assert part in msg


def test_missing_and_unknown_official_tensors_raise(dgnet_cfg, official):
    gen, id_, dis, _ = official
    short = {k: v for k, v in gen.items() if k != "mlp_b4.model.2.fc.bias"}
    with pytest.raises(ValueError, match=r"lack.*gen\.mlp_b\.3\.net\.4\.bias"):
        convert_official_dgnet(short, id_, dis, dgnet_cfg)
    pcb = dict(id_, **{"classifier3.add_block.0.weight": torch.zeros(512, 2048)})
    with pytest.raises(ValueError, match=r"cannot map 1 key.*classifier3\.add_block\.0\.weight"):
        convert_official_dgnet(gen, pcb, dis, dgnet_cfg)
    with pytest.raises(ValueError, match="num_classes=702 but the official id classifier1 has 751"):
        convert_official_dgnet(gen, id_, dis, dgnet_cfg, num_classes=702)


def test_teacher_conversion(teacher_cfg, teacher_sd):
    state, report = convert_official_teacher(teacher_to_official(teacher_sd), teacher_cfg)
    assert list(state) == list(teacher_sd)
    assert all(torch.equal(state[k], v) for k, v in teacher_sd.items())
    assert {k for _, k, _ in report.dropped} == {"model.fc.weight", "model.fc.bias"}


# ------------------------------------------------------------------------------ CLI
def test_cli_converts_release_and_teacher(cli_outputs, ours_sd, teacher_sd):
    assert cli_outputs["rc"] == 0
    printed = cli_outputs["printed"]
    assert "gen: dec.model.*.model.*.model.*.norm.running_*  x16" in printed
    assert "teacher (IDEBaseline, ResNet-50, last stride 1, 751 identities)" in printed

    data = torch.load(cli_outputs["dgnet"], weights_only=True)
    assert data["iteration"] == 100000 and len(data["converted_from"]) == 3
    assert all(torch.equal(data["model"][k], v) for k, v in ours_sd.items())
    assert not (cli_outputs["dgnet"].parent / "config.yaml").exists()

    # the teacher output is what DG-Net training loads as MODEL.TEACHER.WEIGHTS
    cfg = dgnet_plugin.get_cfg("dgnet")
    cfg.MODEL.TEACHER.WEIGHTS = str(cli_outputs["teacher"])
    teacher = load_teacher(cfg, NUM_CLASSES, torch.device("cpu"))
    assert isinstance(teacher, IDEBaseline) and teacher.pool == "avg"
    assert teacher.backbone.layer4[0].conv2.stride == (1, 1)  # stride: 1 of opts.yaml
    loaded = teacher.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in teacher_sd.items())


def test_cli_errors(tmp_path, capsys):
    same = ["--gen", "g.pt", "--id", "i.pt", "--dis", "d.pt", "--teacher", "t.pth"]
    same += ["--output", str(tmp_path / "a.pth"), "--teacher-output", str(tmp_path / "b.pth")]
    assert convert_tool.main(same) == 2
    assert "another folder" in capsys.readouterr().err
    assert convert_tool.main(["--gen", "g.pt"]) == 2
    assert "--gen, --id and --dis must be given together" in capsys.readouterr().err
    missing = ["--checkpoint-dir", str(tmp_path), "--output", str(tmp_path / "x" / "c.pth")]
    assert convert_tool.main(missing) == 2
    assert "gen_00100000.pt' does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------ export
@pytest.fixture(scope="module")
def exported(cli_outputs):
    path = cli_outputs["dgnet"].parent.parent / "export" / "dgnet_r50.pth"
    argv = ["--config-file", str(REPO / "configs" / "dgnet_r50.yml")]
    argv += ["--weights", str(cli_outputs["dgnet"]), "--output", str(path)]
    assert export_tool.main(argv) == 0
    return path


def test_export_loads_into_torchreid_dgnet_r50(exported, ours, capsys):
    data = torch.load(exported, weights_only=True)
    reid_sd = ours.reid.state_dict()
    assert list(data) == list(reid_sd)  # plain {key: tensor}, the reid. prefix stripped

    model = tr.models.build_model("dgnet_r50", num_classes=NUM_CLASSES, pretrained=False)
    capsys.readouterr()
    tr.utils.load_pretrained_weights(model, str(exported))
    printed = capsys.readouterr().out
    assert "Successfully loaded" in printed and "discarded" not in printed
    loaded = model.state_dict()
    assert list(loaded) == list(reid_sd)
    assert all(torch.equal(loaded[k], v) for k, v in reid_sd.items())

    x = torch.randn(2, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), ours.reid.eval()(x), atol=1e-6)


# ------------------------------------------------------------------------------ FeatureExtractor
def _query_images(n: int) -> list[str]:
    return [str(p) for p in sorted((CUHK03_MARKET / "query").iterdir())[:n]]


def test_feature_extractor_matches_evaluation_features(cli_outputs, ours, tmp_path):
    small = tmp_path / "small.yml"  # 128x64 keeps the ResNet-50 test fast
    small.write_text(
        f"_BASE_: {REPO / 'configs' / 'dgnet_r50.yml'}\nINPUT:\n  SIZE_TEST: (128, 64)\n"
    )
    paths = _query_images(3)
    fe = dgnet_plugin.FeatureExtractor(cli_outputs["dgnet"], config_file=str(small))
    feats = fe(paths)
    assert feats.shape == (3, 1024) and feats.dtype == torch.float32
    halves = feats.split(512, dim=1)
    assert all(torch.allclose(h.norm(dim=1), torch.ones(3), atol=1e-5) for h in halves)

    cfg = load_cfg_file(str(small), freeze=False)
    items = [(p, 0, 0) for p in paths]
    loader = DataLoader(ImageListDataset(items, build_transforms(cfg, False)), batch_size=3)
    expected, _, _ = extract_features(ours.reid, loader, torch.device("cpu"), flip=True)
    assert torch.allclose(feats, expected, atol=1e-6)

    with Image.open(paths[1]) as img:  # a single PIL image, and an RGB array
        assert torch.allclose(fe(img.copy()), expected[1:2], atol=1e-5)
        assert torch.allclose(fe(np.asarray(img.convert("RGB"))), expected[1:2], atol=1e-5)


def test_feature_extractor_on_exported_weights_uses_r50_defaults(exported, ours):
    # no config.yaml next to the exported file: the DG-Net R50 defaults (256x128)
    fe = dgnet_plugin.FeatureExtractor(str(exported), batch_size=1)
    path = _query_images(1)
    feats = fe(path)
    loader = [{"img": build_transforms(fe.cfg, False)(read_image(path[0]))[None]}]
    loader[0].update(pid=[0], camid=[0])
    expected, _, _ = extract_features(ours.reid, loader, torch.device("cpu"), flip=True)
    assert feats.shape == (1, 1024) and torch.allclose(feats, expected, atol=1e-6)
    with pytest.raises(ValueError, match="no images"):
        fe([])
