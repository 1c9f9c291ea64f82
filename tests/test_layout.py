"""The layout's promises that no import contract can check: tools/ is method-agnostic."""

from __future__ import annotations

import ast

import pytest
from conftest import REPO

import dgnet_plugin  # noqa: F401 (registers every method)
from dgnet_plugin.config import METHODS

TOOLS = sorted((REPO / "tools").glob("*.py"))


def _method_names() -> set[str]:
    names = set()
    for m in METHODS.values():
        names |= {m.name, *m.engines, *m.meta_architectures}
    return names


def _code_tokens(path) -> list[tuple[int, str]]:
    """Identifiers, attribute names, imported modules and string constants of ``path``,
    docstrings excepted (they may name a method as an example)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                out.append((node.lineno, node.value))
    return out


@pytest.mark.parametrize("path", TOOLS, ids=[p.name for p in TOOLS])
def test_tools_name_no_method(path):
    """A tool asks the method registry; it never imports a method package nor names a
    method, its engines or its meta-architectures."""
    names = _method_names()
    assert {"dgnet", "DGNetEngine", "DGNet", "ide", "IDEEngine"} <= names
    bad = [
        (line, tok)
        for line, tok in _code_tokens(path)
        if tok in names or tok.startswith("dgnet_plugin.methods")
    ]
    assert not bad, f"{path.name} names methods: {bad}"


def test_the_check_finds_a_method_name(tmp_path):
    """The check above can fail."""
    f = tmp_path / "tool.py"
    f.write_text('"""Uses DGNet."""\nif cfg.ENGINE.NAME == "DGNetEngine":\n    pass\n')
    assert (2, "DGNetEngine") in _code_tokens(f)
    assert all(tok != "Uses DGNet." for _, tok in _code_tokens(f))
