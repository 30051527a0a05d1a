"""Every package folder in the rooms is listed in pyproject.toml, so `pip install .` ships it.

The editable install imports unlisted subpackages anyway (it maps whole folders), which hides the
omission until someone installs a wheel; this test makes it visible.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {folder: name for name, folder in config["package-dir"].items()}
    found = set()
    for folder, name in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_tests_do_not_shadow_the_kubetrain_package() -> None:
    # A test folder named like a top-level package (tests/kubetrain/) becomes a namespace package
    # on pytest's sys.path and hides the real one: __version__ and package data vanish.
    import kubetrain

    assert kubetrain.__file__ is not None
    assert Path(kubetrain.__file__).parent == ROOT / "kubetrain"
    assert kubetrain.__version__


def test_the_dashboard_page_is_package_data() -> None:
    """The bundled page (dashboard/static) is in the wheel: each of its files matches a pattern
    of the dashboard's package-data, and the page's entry files are there."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["kubetrain.dashboard"]
    static = ROOT / "dashboard" / "static"
    files = [p.relative_to(ROOT / "dashboard") for p in static.rglob("*") if p.is_file()]
    assert {"index.html", "app.js", "app.css"} <= {f.name for f in files}
    unmatched = [str(f) for f in files if not any(f.match(pattern) for pattern in patterns)]
    assert unmatched == [], f"add patterns for these to package-data: {unmatched}"
    assert "ui" not in {part for f in files for part in f.parts}  # sources stay out
