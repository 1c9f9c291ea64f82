"""The README stays a front page whose two commands are the ones CI and the demo run."""

from __future__ import annotations

import re

from conftest import REPO

from dgnet_plugin.config import load_cfg_file


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_is_short_and_its_two_commands_are_what_ci_and_the_demo_run():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150
    demo, tests = _readme_commands()
    install = 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && '
    assert demo.startswith(install) and tests.startswith(install)
    ci = (REPO / ".ci" / "run").read_text()
    test_command = tests.removeprefix(install)
    assert f"\n{test_command}\n" in ci  # the README's test command, as CI runs it
    m = re.fullmatch(
        r"\.venv/bin/python tools/train_net\.py --config-file (\S+)", demo[len(install) :]
    )
    assert m, demo
    cfg = load_cfg_file(str(REPO / m.group(1)))
    assert cfg.ENGINE.NAME == "DGNetEngine" and "cuhk03" in cfg.DATASETS.ROOT


def test_every_page_the_readme_links_exists():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs/|[A-Z_]+\.md)[^)#]*)", text)
    assert len(links) >= 20
    missing = [link for link in links if not (REPO / link).exists()]
    assert not missing, missing
