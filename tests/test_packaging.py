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
