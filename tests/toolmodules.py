"""``load_tool``: import a script of ``tools/`` by its path, for the tests of that script.

The scripts under ``tools/`` are not a package (they run as ``python tools/.../x.py``), so their
tests load them by file; one loader keeps that in one place.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_tool(relative_path: str) -> ModuleType:
    """The module of ``ROOT / relative_path``, executed (again) on each call and registered in
    ``sys.modules`` under a private name."""
    path = ROOT / relative_path
    name = "kubetrain_tool_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look a module up by its name
    spec.loader.exec_module(module)
    return module
