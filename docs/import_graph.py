"""Draw the import graph of dgnet_plugin's subpackages into docs/architecture.md.

    python docs/import_graph.py          # rewrite the diagram between the markers
    python docs/import_graph.py --check  # exit 1 if the page's diagram is out of date

The graph is built by grimp (the library under import-linter, which checks the same imports
against the contracts of setup.cfg [importlinter]) from the source, statically: one node per
subpackage or top-level module of dgnet_plugin, an arrow A --> B when some module of A imports
some module of B. The method packages are one node, ``methods`` (they never import each other).
Run it from the repository root with the package importable (an editable install, or
PYTHONPATH=.).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grimp

PACKAGE = "dgnet_plugin"
PAGE = Path(__file__).resolve().parent / "architecture.md"
BEGIN = "<!-- import-graph: begin (written by docs/import_graph.py) -->"
END = "<!-- import-graph: end -->"

# Top to bottom: the layers of setup.cfg [importlinter:contract:layers], then the modules
# outside the layers contract.
ORDER = [
    "train",
    "cli",
    "methods",
    "feature_extractor",
    "engine",
    "evaluation",
    "data",
    "modeling",
    "losses",
    "config",
    "utils",
    "model_zoo",
    "errors",
]


def node_of(module: str) -> str | None:
    """``dgnet_plugin.engine.hooks`` -> ``engine``; the package's own ``__init__`` -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def subpackage_edges() -> tuple[list[str], set[tuple[str, str]]]:
    """The nodes and the direct imports between them (self-imports left out)."""
    graph = grimp.build_graph(PACKAGE, include_external_packages=False)
    edges: set[tuple[str, str]] = set()
    nodes: set[str] = set()
    for importer in graph.modules:
        a = node_of(importer)
        if a is None:
            continue
        nodes.add(a)
        for imported in graph.find_modules_directly_imported_by(importer):
            b = node_of(imported)
            if b is not None and b != a:
                edges.add((a, b))
    ordered = [n for n in ORDER if n in nodes] + sorted(nodes - set(ORDER))
    return ordered, edges


def mermaid() -> str:
    nodes, edges = subpackage_edges()
    lines = ["```mermaid", "graph TD"]
    for n in nodes:
        lines.append(f"    {n}[{n}]")
    rank = {n: i for i, n in enumerate(nodes)}
    for a, b in sorted(edges, key=lambda e: (rank[e[0]], rank[e[1]])):
        lines.append(f"    {a} --> {b}")
    lines.append("```")
    return "\n".join(lines)


def render(page_text: str) -> str:
    head, sep, rest = page_text.partition(BEGIN)
    if not sep or END not in rest:
        raise SystemExit(f"{PAGE}: the markers {BEGIN!r} and {END!r} are missing")
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is out of date")
    args = parser.parse_args(argv)
    old = PAGE.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print(f"{PAGE} is out of date: run python docs/import_graph.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
