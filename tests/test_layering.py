"""The "may import" column of the architecture table, and no import cycles, enforced.

Each room is a folder mapped into the ``kubetrain`` namespace; a module may import only the rooms
its row allows. We read imports with ``ast`` (no import side effects), resolve relative imports, and
compare the ``kubetrain.*`` targets with the allowed prefixes. Then no module may reach itself
through the project's imports, counting those inside functions and under ``TYPE_CHECKING`` too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# room folder -> (its import prefix, the kubetrain prefixes it may import besides itself)
RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "base": ("kubetrain.base", ()),
    "informers": ("kubetrain.informers", ("kubetrain.base",)),
    "engine": ("kubetrain.engine", ("kubetrain.base", "kubetrain.informers")),
    "reconcilers": (
        "kubetrain.reconcilers",
        ("kubetrain.base", "kubetrain.engine", "kubetrain.informers"),
    ),
    # The API server is stdlib + third-party + base only; it is what every client talks to.
    "cluster/apiserver": ("kubetrain.cluster.apiserver", ("kubetrain.base",)),
    # The node simulator is a client like a kubelet: it must work against any API server.
    "cluster/nodesim": (
        "kubetrain.cluster.nodesim",
        ("kubetrain.base", "kubetrain.engine", "kubetrain.informers"),
    ),
    # kube-controller-manager's controllers: clients of the API server like the simulator.
    "cluster/kcm": (
        "kubetrain.cluster.kcm",
        ("kubetrain.base", "kubetrain.engine", "kubetrain.informers"),
    ),
    "cluster": (
        "kubetrain.cluster",
        ("kubetrain.base", "kubetrain.engine", "kubetrain.informers"),
    ),
    # The dashboard reads through informers and acts with the user's client; never the app.
    "dashboard": (
        "kubetrain.dashboard",
        ("kubetrain.base", "kubetrain.engine", "kubetrain.informers", "kubetrain.reconcilers"),
    ),
}


def module_name(path: Path, folder: str, prefix: str) -> str:
    rel = path.relative_to(ROOT / folder).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([prefix, *parts])


def import_statements(path: Path, module: str) -> list[tuple[str, list[str]]]:
    """Every import statement of a file, wherever it stands, as (absolute target, names):
    ``import a.b`` is ``("a.b", [])``; ``from .x import y, z`` in ``pkg.m`` is
    ``("pkg.x", ["y", "z"])``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [alias.name for alias in node.names]))
    return out


def imported_modules(path: Path, module: str) -> list[str]:
    """What a file may reach: each target, and ``target.name`` for every name it imports from it."""
    out: list[str] = []
    for target, names in import_statements(path, module):
        out.append(target)
        out.extend(f"{target}.{name}" for name in names)
    return out


def violations(folder: str) -> list[str]:
    prefix, allowed = RULES[folder]
    nested = [f for f in RULES if f != folder and f.startswith(folder + "/")]
    found: list[str] = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if any(path.is_relative_to(ROOT / n) for n in nested):
            continue  # a nested room has its own, stricter row
        module = module_name(path, folder, prefix)
        for target in imported_modules(path, module):
            if not target.startswith("kubetrain") or target in ("kubetrain",):
                continue
            ok = target == prefix or target.startswith(prefix + ".")
            ok = ok or any(target == a or target.startswith(a + ".") for a in allowed)
            if not ok:
                found.append(f"{path.relative_to(ROOT)} imports {target}")
    return found


@pytest.mark.parametrize("folder", sorted(RULES))
def test_room_imports_only_what_design_allows(folder: str) -> None:
    assert violations(folder) == []


def test_checker_catches_a_forbidden_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = tmp_path / "informers"
    room.mkdir()
    (room / "bad.py").write_text("from kubetrain.engine import queue\nfrom . import ok\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert violations("informers") == [
        "informers/bad.py imports kubetrain.engine",
        "informers/bad.py imports kubetrain.engine.queue",
    ]


# -- import cycles ---------------------------------------------------------------------------------

#: Every room, by folder, with its import prefix (nested rooms included).
PREFIXES: dict[str, str] = {
    **{folder: prefix for folder, (prefix, _) in RULES.items()},
    "kubetrain": "kubetrain",
    "bench": "kubetrain.bench",
}


def module_files() -> dict[str, Path]:
    """Every module of every room: dotted name -> file."""
    out: dict[str, Path] = {}
    for folder, prefix in PREFIXES.items():
        for path in (ROOT / folder).rglob("*.py"):
            out[module_name(path, folder, prefix)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports, counting every import statement: at the top,
    inside functions and under ``if TYPE_CHECKING`` alike (a cycle hidden in a function is a
    cycle all the same).

    Each imported name is resolved on its own: ``from pkg import sub`` is an edge to ``pkg.sub``
    when that is a module, and ``from pkg import name`` (a re-export) an edge to ``pkg`` itself.
    ``from pkg.sub import x`` is an edge to ``pkg.sub`` alone, not to ``pkg``: Python imports the
    parent package first, but a module of ``pkg`` that imports a sibling does not need the
    package's ``__init__`` finished (counting that edge would make every package with
    re-exports a false cycle). A module that does read a name from its own package's
    ``__init__`` while that ``__init__`` imports it is a real cycle, and is reported."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for target, names in import_statements(path, module):
            for name in names or [""]:
                submodule = f"{target}.{name}"
                targets.add(submodule if name and submodule in modules else target)
        graph[module] = {t for t in targets if t in modules} - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_module_imports_itself_in_a_circle() -> None:
    assert cycles(import_graph(module_files())) == []


def test_cycle_check_catches_a_cycle_hidden_in_a_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = tmp_path / "informers"
    room.mkdir()
    (room / "a.py").write_text("from . import b\n")
    (room / "b.py").write_text("def later():\n    from .c import x\n")
    (room / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (room / "d.py").write_text("from . import a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    modules = {
        module_name(p, "informers", "kubetrain.informers"): p for p in sorted(room.glob("*.py"))
    }
    assert cycles(import_graph(modules)) == [
        ["kubetrain.informers.a", "kubetrain.informers.b", "kubetrain.informers.c"]
    ]
    (room / "c.py").write_text("x = 1\n")
    assert cycles(import_graph(modules)) == []


def test_cycle_check_reads_a_package_name_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "informers" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .a import A\nfrom .c import C\n")
    (package / "a.py").write_text("from .b import B\nA = B\n")
    (package / "b.py").write_text("B = 1\n")
    # a sibling import goes to the sibling, not through the package's __init__
    (package / "c.py").write_text("from . import b\nC = b.B\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    modules = {
        module_name(p, "informers", "kubetrain.informers"): p
        for p in sorted(package.parent.rglob("*.py"))
    }
    assert cycles(import_graph(modules)) == []
    # reading a re-exported name from the package its __init__ is still importing is a cycle
    (package / "c.py").write_text("from . import b\nfrom kubetrain.informers.pkg import A\nC = A\n")
    assert cycles(import_graph(modules)) == [
        ["kubetrain.informers.pkg", "kubetrain.informers.pkg.c"]
    ]
