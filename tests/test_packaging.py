"""The package works beyond a clone: the configs travel in the wheel and are found by name,
every tool has a console command with the tool's options, ``python -m dgnet_plugin.train``.
(.ci/run also installs the wheel into a fresh environment outside the clone and trains the
CPU demo by name for a few iterations.)"""

from __future__ import annotations

import configparser
import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from dgnet_plugin.config import ConfigError, load_cfg_file
from dgnet_plugin.model_zoo import get_config_file, packaged_configs


def _console_scripts() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_packaged_configs_are_the_repository_configs():
    repo = sorted(p.name for p in (REPO / "configs").glob("*.yml"))
    assert repo and packaged_configs() == repo
    path = Path(get_config_file("dgnet_cuhk03_cpu_demo.yml"))
    assert path.read_bytes() == (REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml").read_bytes()
    # the README's repository-relative form and the bare stem name the same file
    assert get_config_file("configs/dgnet_r50.yml") == get_config_file("dgnet_r50")


def test_a_config_name_loads_with_its_base_and_a_wrong_name_lists_the_packaged_ones(tmp_path):
    cfg = load_cfg_file("camstyle_cpu_demo.yml")  # _BASE_ chain resolved inside the package
    assert cfg.ENGINE.NAME and cfg.OUTPUT_DIR
    with pytest.raises(ConfigError, match="dgnet_r50.yml") as e:
        load_cfg_file(str(tmp_path / "dgnet_r5O.yml"))
    assert "dgnet_r5O.yml" in str(e.value)


def test_every_tool_has_a_console_command_that_resolves():
    scripts = _console_scripts()
    targets = {v.split(":")[0].rsplit(".", 1)[-1] for v in scripts.values()}
    tools = {p.stem for p in (REPO / "tools").glob("*.py")}
    assert tools <= targets, f"tools without a console command: {tools - targets}"
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name


@pytest.mark.e2e
def test_the_wheel_holds_every_config_and_the_commands(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("dgnet_plugin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("dgnet_plugin/configs/")}
    assert shipped == {p.name for p in (REPO / "configs").glob("*.yml")}
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(f"{name} = " in text for name in _console_scripts())


def test_python_m_dgnet_plugin_train_is_the_train_command():
    out = subprocess.run(
        [sys.executable, "-m", "dgnet_plugin.train", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--config-file" in out.stdout and "--eval-only" in out.stdout
