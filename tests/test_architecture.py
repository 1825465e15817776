"""The house rules of ARCHITECTURE.md, checked by reading the source (ast), not by
running it: short functions, no import loop in the core, a core that imports no face,
and a public API without terminal helpers.

Each test names every offender, so a failure says what to fix.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "ui", "eval")
MAX_FUNCTION_LINES = 60
FACES = ("ui", "eval")
TERMINAL_HELPERS = {"echo", "echo_json", "progress_bar", "auto_ingest"}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the imports under ``if TYPE_CHECKING:``: they never run, so they make no loop."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def _imported(path: Path, tree: ast.AST, known: set[str], root: Path = ROOT) -> set[str]:
    """The modules ``path`` imports anywhere (module level or inside functions): ``from
    pkg import name`` is the submodule ``pkg.name`` when there is one, else ``pkg``."""
    here = _module_name(path, root)
    package = here if _is_package(path) else here.rpartition(".")[0]
    skipped = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    found.discard(here)
    return found


def _function_lengths(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # From the `def` line to the last line of the body (decorators not counted).
            yield node.name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1


def test_no_function_is_over_60_lines():
    long = [f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
            for package in PACKAGES for path in _sources(package)
            for name, line, length in _function_lengths(path) if length > MAX_FUNCTION_LINES]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def _import_graph(package: str) -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in _sources(package)}
    known = set(paths)
    graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {m for m in _imported(path, tree, known) if m in known}
    return graph


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def test_rag_modules_import_without_a_loop():
    loops = _loops(_import_graph("rag"))
    assert not loops, "import loops in rag/:\n" + "\n".join(" <-> ".join(c) for c in loops)


def test_the_loop_finder_finds_loops_through_function_level_imports(tmp_path):
    """The check above can fail: a loop closed by an import inside a function counts."""
    graph = {"rag.a": {"rag.b"}, "rag.b": {"rag.c"}, "rag.c": {"rag.a"}, "rag.d": {"rag.a"}}
    assert _loops(graph) == [["rag.a", "rag.b", "rag.c"]]
    source = tmp_path / "rag" / "store" / "repair.py"
    source.parent.mkdir(parents=True)
    source.write_text("def fix():\n    from rag.store import open\n    from . import schema\n")
    known = {"rag.store", "rag.store.open", "rag.store.schema", "rag.store.repair"}
    tree = ast.parse(source.read_text())
    assert _imported(source, tree, known, tmp_path) == {"rag.store.open", "rag.store.schema"}


MODULE_PATH = re.compile(r"(?:%s)(?:\.\w+)+(?::[\w.]+)?" % "|".join(FACES))


def _names_a_face(text: str, faces: set[str]) -> bool:
    """Is ``text`` a face's module, as importlib or an entry point takes it ("ui.cli",
    "eval.cli:eval_command", "ui.app.serve")? ("eval.jsonl" is not: no such module.)"""
    if not MODULE_PATH.fullmatch(text.strip()):
        return False
    dotted = text.strip().split(":")[0]
    parent = dotted.rpartition(".")[0]
    return dotted in faces or (parent in faces and parent not in FACES)


def test_the_core_imports_no_face():
    """rag/ names no module of ui/ or eval/: not in an import, and not as a string that
    importlib (or an entry-point-like "ui.cli:command") would load."""
    faces = {_module_name(p) for face in FACES for p in _sources(face)}
    found = []
    for path in _sources("rag"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and _names_a_face(node.value, faces)):
                found.append(f"{where}:{node.lineno} the string {node.value!r}")
            found += [f"{where}:{getattr(node, 'lineno', 0)} imports {name}" for name in names
                      if name.split(".")[0] in FACES]
    assert not found, "rag/ reaches into a face:\n" + "\n".join(found)
    assert _names_a_face("ui.cli", faces) and _names_a_face("eval.cli:eval_command", faces)
    assert not _names_a_face("eval.jsonl", faces)


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _exported(init: Path) -> tuple[set[str], set[str]]:
    """(names in ``__all__``, modules its lazy names load from), read from rag/__init__.py:
    ``__all__`` lists ``*_LAZY`` (name -> module) and the error classes."""
    lazy: dict[str, str] = {}
    exported: set[str] = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.Assign) or not isinstance(node.targets[0], ast.Name):
            continue
        if node.targets[0].id == "_LAZY" and isinstance(node.value, ast.Dict):
            lazy = {ast.literal_eval(k): ast.literal_eval(v)
                    for k, v in zip(node.value.keys, node.value.values, strict=True) if k}
        elif node.targets[0].id == "__all__" and isinstance(node.value, ast.List):
            for item in node.value.elts:
                exported |= set(lazy) if isinstance(item, ast.Starred) else {
                    ast.literal_eval(item)}
    return exported, set(lazy.values())


def test_rag_exports_no_terminal_helpers():
    exported, modules = _exported(ROOT / "rag" / "__init__.py")
    assert {"Pipeline", "load_settings", "AbstractaError"} <= exported  # the reading works
    helpers = TERMINAL_HELPERS | _top_level_names(ROOT / "rag" / "console.py")
    assert not exported & helpers, exported & helpers
    assert not modules & {"rag.console", "rag.cli"}, modules
