"""The "may import" column of DESIGN.md, enforced.

Each room is a folder mapped into the ``kubetrain`` namespace; a module may import only the rooms
its row allows. We read imports with ``ast`` (no import side effects), resolve relative imports, and
compare the ``kubetrain.*`` targets with the allowed prefixes.
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
