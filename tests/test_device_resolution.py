"""One device per run: ``MODEL.DEVICE`` is interpreted by
:func:`dgnet_plugin.engine.device.resolve_device` alone, and every generation stage, translator,
mask and pose provider gets the run's resolved device.

Two checks: the package source (no other module compares a device name with ``"auto"`` or
asks ``torch.cuda.is_available()`` outside the listed places), and each generation path run
with a ``StageContext`` on a sentinel device (``meta``) while ``resolve_device`` raises if
called: what the translator / generator loader receives must be that device.
"""

from __future__ import annotations

import ast

import pytest
import torch
from conftest import REPO

from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.engine.stages import StageContext

PACKAGE = REPO / "dgnet_plugin"
DEVICE_MODULE = PACKAGE / "engine" / "device.py"
#: the only other places that ask whether CUDA exists, and why (none chooses a device)
CUDA_QUERIES = {
    "engine/launch.py": "a CUDA MODEL.DEVICE without CUDA is a ConfigError before NCCL starts",
    "utils/checkpoint.py": "the CUDA RNG state is saved / restored when CUDA exists",
    "data/build.py": "pinned host memory for the loaders when CUDA exists",
    "offline_augmentation/data.py": "pinned host memory for the loaders when CUDA exists",
    "methods/pngan/gan.py": "pinned host memory for the loaders when CUDA exists",
}
META = torch.device("meta")


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text())


def test_only_resolve_device_interprets_auto():
    found = []
    for path, rel, tree in _sources():
        if path == DEVICE_MODULE:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            consts = [n for p in parts for n in ast.walk(p) if isinstance(n, ast.Constant)]
            if any(c.value == "auto" for c in consts):
                text = ast.unparse(node)
                if "device" in text.lower():
                    found.append(f"{rel}:{node.lineno}: {text}")
    assert not found, "device names resolved outside engine/device.py:\n" + "\n".join(found)


def test_cuda_availability_asked_only_where_listed():
    found = set()
    for path, rel, tree in _sources():
        if path == DEVICE_MODULE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.cuda.is_available":
                found.add(rel)
    assert found == set(CUDA_QUERIES), found ^ set(CUDA_QUERIES)


def test_resolve_device_names():
    from dgnet_plugin.engine.device import device_name, resolve_device

    auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert device_name("auto") == auto and resolve_device("auto") == torch.device(auto)
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert device_name("cuda:1") == "cuda:1"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


class _Stop(Exception):
    pass


@pytest.fixture
def no_resolve(monkeypatch):
    """``resolve_device`` raises wherever it is looked up at call time."""
    import dgnet_plugin.engine.device as device

    def refuse(name):
        raise AssertionError(f"resolve_device({name!r}) called inside a stage")

    monkeypatch.setattr(device, "resolve_device", refuse)


def _ctx(config, tmp_path):
    cfg = load_cfg_file(config, ["OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "auto"])
    return StageContext(cfg, config, [], META)


def test_stage_context_resolves_once_when_not_given(tmp_path):
    cfg = load_cfg_file("configs/camstyle_cpu_demo.yml", ["MODEL.DEVICE", "cpu"])
    assert StageContext(cfg, "x.yml").device == torch.device("cpu")


def _recorded_translate(monkeypatch, module):
    got = {}

    def write(root, plan, translate, *args, **kwargs):
        got["device"] = translate.device
        raise _Stop

    monkeypatch.setattr(module, "write_generated_set", write)
    return got


def test_camstyle_generation_gets_the_run_device(tmp_path, monkeypatch, no_resolve):
    from dgnet_plugin.methods.camstyle import pipeline

    monkeypatch.setattr(pipeline, "generation_plan", lambda cfg: [])
    got = _recorded_translate(monkeypatch, pipeline)
    with pytest.raises(_Stop):
        pipeline.generate(_ctx("configs/camstyle_cpu_demo.yml", tmp_path))
    assert got["device"] == META


@pytest.mark.parametrize("config", ["configs/spgan_cpu_demo.yml", "configs/ptgan_cpu_demo.yml"])
def test_cross_domain_generation_gets_the_run_device(config, tmp_path, monkeypatch, no_resolve):
    from dgnet_plugin.offline_augmentation import engine as offline

    monkeypatch.setattr(offline, "source_to_target_plan", lambda cfg, generator: [])
    got = _recorded_translate(monkeypatch, offline)
    ctx = _ctx(config, tmp_path)
    stage = next(
        s
        for s in offline.cross_domain_stages(ctx.cfg, "X", "CycleGAN", "gen")
        if s.name == "generate"
    )
    with pytest.raises(_Stop):
        stage.run(ctx)
    assert got["device"] == META


@pytest.mark.parametrize(
    "method, config",
    [("lsro", "configs/lsro_cuhk03_cpu_demo.yml"), ("pngan", "configs/pngan_cuhk03_cpu_demo.yml")],
)
def test_generator_loading_gets_the_run_device(method, config, tmp_path, monkeypatch, no_resolve):
    import importlib

    stages = importlib.import_module(f"dgnet_plugin.methods.{method}.stages")
    got = {}

    def load(run_dir, device="cpu"):
        got["device"] = device
        raise _Stop

    monkeypatch.setattr(stages, "load_translator", load)
    with pytest.raises(_Stop):
        stages.generate(_ctx(config, tmp_path))
    assert got["device"] == META


def test_pose_stage_gets_the_run_device(tmp_path, monkeypatch, no_resolve):
    from dgnet_plugin.methods.pngan import stages

    got = {}

    def poses(pose_cfg, items, device="cpu"):
        got["device"] = device
        raise _Stop

    monkeypatch.setattr(stages, "compute_canonical_poses", poses)
    with pytest.raises(_Stop):
        stages.compute_poses(_ctx("configs/pngan_cuhk03_cpu_demo.yml", tmp_path))
    assert got["device"] == META


def test_mask_provider_takes_the_device_and_fills_its_cache_in_this_process(tmp_path):
    from PIL import Image

    from dgnet_plugin.offline_augmentation.masks import ModelMaskProvider, mask_provider_from_cfg

    class Half(torch.nn.Module):
        def forward(self, x):
            return torch.full_like(x[:, :1], 0.5)

    model = tmp_path / "seg.ts"
    torch.jit.trace(Half(), torch.zeros(1, 3, 4, 4)).save(str(model))
    img = tmp_path / "0001_c1s1_000001_00.jpg"
    Image.new("RGB", (8, 16), (10, 20, 30)).save(img)
    cfg = load_cfg_file(
        "configs/ptgan_cpu_demo.yml",
        ["MASKS.FOLDER", "", "MASKS.MODEL", str(model), "MASKS.CACHE", str(tmp_path / "cache")],
    )
    provider = mask_provider_from_cfg(cfg, torch.device("cpu"))
    assert isinstance(provider, ModelMaskProvider) and provider.device == torch.device("cpu")
    assert provider.prepare([str(img)]) == 1 and provider.prepare([str(img)]) == 0
    assert torch.allclose(provider(str(img)), torch.full((1, 16, 8), 128 / 255))
