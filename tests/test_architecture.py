"""The shape of the package: import-linter's contracts (pyproject.toml: views → services →
models, the engine and the Max client never reach a view, the product never imports the
demo) hold, no module of ``migrator`` takes part in an import cycle (function-level
imports included), and imports sit at the top of their module but for a few deliberate
exceptions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_import_linter_contracts_hold():
    # In its own process: import-linter reconfigures logging, which would leak into the
    # tests that run after it in this one.
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, "
            "no_cache=True, no_logo=True))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_cycles():
    graph = grimp.build_graph("migrator", cache_dir=None)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"),
                               ("p.d", "p.e")):
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"]]


# Function-level imports on purpose: each keeps a heavy library out of the processes that
# never use it (``import migrator`` stays light for workers and the sandbox; APScheduler only
# in the scheduler; openpyxl only when an XLSX is uploaded; Alembic only when migrating).
DEFERRED_IMPORTS = {
    ("migrator/__init__.py", "migrator.factory"),
    ("migrator/engine/scheduler.py", "apscheduler.jobstores.sqlalchemy"),
    ("migrator/engine/scheduler.py", "apscheduler.schedulers.background"),
    ("migrator/engine/scheduler.py", "apscheduler.schedulers.blocking"),
    ("migrator/imports/parser.py", "openpyxl"),
    ("migrator/db.py", "alembic.config"),
    ("migrator/db.py", "alembic"),
}


def function_level_imports(path: Path) -> set[str]:
    """The modules ``path`` imports inside a function (``if TYPE_CHECKING:`` blocks aside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    found.update(alias.name for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom):
                    found.add(inner.module or ".")
    return found


def test_imports_sit_at_the_top_of_their_module():
    package = ROOT / "migrator"
    found = {(str(path.relative_to(ROOT)), module)
             for path in package.rglob("*.py") if "migrations" not in path.parts
             for module in function_level_imports(path)}
    assert found - DEFERRED_IMPORTS == set()


def test_function_level_imports_are_found(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from json import dumps\n"
                      "    def g():\n        import re\n", encoding="utf-8")
    assert function_level_imports(module) == {"json", "re"}
