"""The layer modules import one way and stay short (issue 21).

Imports inside functions count: a lazy import that closes a circle is still a
circle. The TensorFlow fast path is reached through the `_fast_path`
registry, so `rnn.py` never imports `_tf_fast`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import seqkit.layers

PACKAGE = Path(seqkit.layers.__file__).parent
PREFIX = "seqkit.layers"


def _module_name(path):
    return PREFIX if path.name == "__init__.py" else f"{PREFIX}.{path.stem}"


def _imports(path, modules):
    """The seqkit.layers modules `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    found.add(full)
                elif node.module in modules:
                    found.add(node.module)
    return found


def _graph():
    paths = {_module_name(p): p for p in PACKAGE.glob("*.py")}
    return {name: _imports(path, paths) - {name} for name, path in paths.items()}


def test_no_import_circle():
    graph = _graph()
    # The package imports its modules; no module imports the package back.
    assert not [m for m, deps in graph.items() if PREFIX in deps], graph
    done, active = set(), []

    def visit(module):
        if module in active:
            raise AssertionError("import circle: " + " -> ".join(active + [module]))
        if module in done:
            return
        active.append(module)
        for dep in sorted(graph[module]):
            visit(dep)
        active.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_leaf_modules_import_nothing_from_seqkit():
    graph = _graph()
    for leaf in ("_fast_path", "_gates", "_native", "_validation"):
        assert graph[f"{PREFIX}.{leaf}"] == set(), leaf
    assert f"{PREFIX}._tf_fast" not in graph[f"{PREFIX}.rnn"]


def test_modules_are_at_most_500_lines():
    lengths = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert max(lengths.values()) <= 500, lengths
