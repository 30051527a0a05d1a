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
    "cluster": (
        "kubetrain.cluster",
        ("kubetrain.base", "kubetrain.engine", "kubetrain.informers"),
    ),
}


def module_name(path: Path, folder: str, prefix: str) -> str:
    rel = path.relative_to(ROOT / folder).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([prefix, *parts])


def imported_modules(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append(target)
            out.extend(f"{target}.{alias.name}" for alias in node.names)
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
    cycle all the same). ``from package import name`` counts as importing ``package.name``
    when that is a module, else ``package``."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for target in imported_modules(path, module):
            if target in modules:
                targets.add(target)
        # ``from pkg import sub`` lists both pkg and pkg.sub: keep only the submodule then.
        graph[module] = {
            t for t in targets if not any(o.startswith(t + ".") and o in targets for o in targets)
        } - {module}
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
