"""The import rule of docs/ARCHITECTURE.md: the subpackages form layers, spec <- refimpl <-
gpu <- conformance, and nothing imports a layer above its own. Read from the source (every
import statement, relative ones resolved), and checked once at run time."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# subpackage -> the taskmap subpackages its modules may import (besides its own)
ALLOWED = {
    "spec": set(),
    "refimpl": {"spec"},
    "gpu": {"spec", "refimpl"},
    "frontends": {"spec", "refimpl", "gpu"},
    "conformance": {"spec", "refimpl", "gpu", "frontends", "examples", ""},
    "examples": {"spec", "refimpl"},     # matmul_tc is a thin use of the operator library's template
}


# subpackage -> the layers it may import only inside a function, when a call needs them (never
# when the module is imported): compile(backend="cuda") and load() of a cuda program
LAZY = {"frontends": {"gpu"}}


def _modules():
    for sub in ALLOWED:
        for path in sorted((ROOT / sub).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            package = parts if parts[-1] == "__init__" else parts[:-1]
            yield sub, path, ("taskmap", *[p for p in package if p != "__init__"])


def _in_functions(tree: ast.Module) -> set[int]:
    """ids of the import statements inside a function body (run on a call, not on import)."""
    return {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}


def _imported(tree: ast.Module, package: tuple[str, ...], lazy: set[int] = frozenset()):
    """(line, absolute module name, whether inside a function) of every import of a taskmap module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = [".".join(base + ((node.module,) if node.module else ()))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name == "taskmap" or name.startswith("taskmap."):
                yield node.lineno, name, id(node) in lazy


def _layer(name: str) -> str:
    """taskmap.spec.ir -> spec; taskmap -> '' (the package face). `taskmap.lang` is the DSL
    of spec/lang.py under its public name, so it belongs to the spec layer."""
    parts = name.split(".")
    layer = parts[1] if len(parts) > 1 else ""
    return "spec" if layer == "lang" else layer


def test_no_module_imports_a_layer_above_its_own():
    bad = []
    for sub, path, package in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, name, in_function in _imported(tree, package, _in_functions(tree)):
            layer = _layer(name)
            if layer != sub and layer not in ALLOWED[sub]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {sub} imports {name}")
            elif layer in LAZY.get(sub, ()) and not in_function:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {sub} imports {name} at module level (only inside "
                           "the functions that need it)")
    assert not bad, "imports against the layering of docs/ARCHITECTURE.md:\n" + "\n".join(bad)


def test_the_rule_sees_relative_and_absolute_imports():
    """The scan itself: an upward import written either way is found."""
    tree = ast.parse("from ..gpu import emit\nfrom taskmap.conformance import cli\nfrom . import ir\n"
                     "def f():\n    import taskmap.gpu.executable\n")
    found = [(name, lazy) for _, name, lazy in _imported(tree, ("taskmap", "spec"), _in_functions(tree))]
    assert found == [("taskmap.gpu", False), ("taskmap.conformance", False), ("taskmap.spec", False),
                     ("taskmap.gpu.executable", True)]


@pytest.mark.parametrize("module, absent", [
    ("taskmap.spec.verifier", ("taskmap.refimpl", "taskmap.gpu", "taskmap.conformance")),
    ("taskmap.lang", ("taskmap.refimpl", "taskmap.gpu", "taskmap.conformance")),
    ("taskmap.refimpl", ("taskmap.gpu", "taskmap.conformance")),
    ("taskmap.spec.graph.passes", ("taskmap.refimpl", "taskmap.gpu", "taskmap.frontends", "taskmap.conformance")),
    ("taskmap.frontends.onnx_import", ("taskmap.gpu", "taskmap.conformance")),
    ("taskmap.frontends.compiler", ("taskmap.gpu", "taskmap.conformance")),
    ("taskmap.frontends.saved", ("taskmap.gpu", "taskmap.conformance")),
])
def test_importing_a_layer_loads_nothing_above_it(module, absent):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m.startswith({absent!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing {module} loaded {out.strip()}"
