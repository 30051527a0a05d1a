"""Run mypy --strict over every room of the ``kubetrain`` package (base, engine, informers,
reconcilers, cluster, bench and the app room).

Why a shadow tree: the rooms are top-level folders mapped into the ``kubetrain`` namespace with
setuptools ``package-dir``; mypy resolves modules from folders, not from that mapping (nor from the
editable-install import hook). So we lay out ``build/typecheck/kubetrain/<room>`` as symlinks to the
real folders and point mypy at that tree. Paths in mypy's messages are the real files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = {
    "base": "base",
    "engine": "engine",
    "informers": "informers",
    "reconcilers": "reconcilers",
    "cluster": "cluster",
    "dashboard": "dashboard",
    "bench": "bench",
}
STRICT = ["kubetrain"]


def build_shadow() -> Path:
    shadow = ROOT / "build" / "typecheck"
    pkg = shadow / "kubetrain"
    pkg.mkdir(parents=True, exist_ok=True)
    for entry in (ROOT / "kubetrain").iterdir():
        link = pkg / entry.name
        if not link.is_symlink() and not link.exists():
            link.symlink_to(entry)
    for name, folder in ROOMS.items():
        link = pkg / name
        if not link.is_symlink():
            link.symlink_to(ROOT / folder)
    return shadow


def main() -> int:
    shadow = build_shadow()
    env = dict(os.environ, MYPYPATH=str(shadow))
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    for package in STRICT:
        args += ["-p", package]
    return subprocess.call(args, cwd=shadow, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
