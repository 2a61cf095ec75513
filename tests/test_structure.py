"""The shape of the code (DESIGN.md): short modules, one-way imports, no circles, one export.

Read from the source with `ast`, so every import counts, inside functions too.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("seqkit", "tasks")


def _modules() -> dict[str, str]:
    """Dotted module name -> file path, for every module of seqkit/ and tasks/."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement in the file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if not path.endswith("__init__.py"):
                    package = package[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{base}.{n}" in MODULES]
            out.extend((f"{base}.{n}", []) for n in submodules)
            rest = [n for n in names if n not in submodules]
            if rest or not submodules:
                out.append((base, rest))
    return out


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _ in _imports(module, path) if target in MODULES}
        for module, path in MODULES.items()
    }


def test_every_module_is_at_most_500_lines():
    long = {}
    for module, path in MODULES.items():
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > 500:
            long[module] = n
    assert not long, f"modules over 500 lines: {long}"


def test_the_library_never_imports_its_applications():
    bad = [
        (module, target)
        for module, path in MODULES.items()
        if module.startswith("seqkit")
        for target, _ in _imports(module, path)
        if target == "tasks" or target.startswith("tasks.")
    ]
    assert not bad, f"seqkit imports tasks: {bad}"


def test_tasks_use_only_public_names_of_seqkit():
    bad = []
    for module, path in MODULES.items():
        if not module.startswith("tasks"):
            continue
        for target, names in _imports(module, path):
            if not target.startswith("seqkit"):
                continue
            private = [p for p in target.split(".") if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            if private:
                bad.append((module, target, private))
    assert not bad, f"tasks import private seqkit names: {bad}"


def test_no_import_circles():
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_export_is_written_once_in_tasks():
    defs = [
        (module, node.lineno)
        for module, path in MODULES.items()
        if module.startswith("tasks")
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "export"
    ]
    assert [m for m, _ in defs] == ["tasks.base"], defs


@pytest.mark.parametrize(
    "module",
    [
        "seqkit.data",
        "seqkit.text",
        "seqkit.series",
        "seqkit.metrics",
        "seqkit.samplers",
        "seqkit.search",
        "seqkit.training",
        "seqkit.export",
        "tasks.cli",
    ],
)
def test_library_modules_have_test_modules_of_their_own(module):
    name = module.split(".")[-1]
    assert os.path.isfile(os.path.join(ROOT, "tests", f"test_{name}.py")), module
