"""The committed page bundle (dashboard/static) is the build of the committed sources
(dashboard/ui), and it loads nothing from outside the dashboard.

tools/dashboard/build.sh writes dashboard/static/BUILD.json with the sha256 of the sources it
built from; here the same hash is computed again (sha256 over "<sha256 of file>  <path>\\n" for
package.json, package-lock.json and every file under src/, paths relative to dashboard/ui,
sorted), so a change to the page's sources without a rebuild fails CI, which has no Node.js.
"""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "dashboard" / "ui"
STATIC = ROOT / "dashboard" / "static"
BUILD = "tools/dashboard/build.sh"


def source_paths() -> list[str]:
    paths = ["package.json", "package-lock.json"]
    paths += [p.relative_to(UI).as_posix() for p in (UI / "src").rglob("*") if p.is_file()]
    return sorted(paths, key=lambda p: p.encode())


def sources_sha256() -> tuple[str, dict[str, str]]:
    files = {p: hashlib.sha256((UI / p).read_bytes()).hexdigest() for p in source_paths()}
    listing = "".join(f"{digest}  {path}\n" for path, digest in files.items())
    return hashlib.sha256(listing.encode()).hexdigest(), files


def build_info() -> dict[str, object]:
    path = STATIC / "BUILD.json"
    assert path.is_file(), f"no {path.relative_to(ROOT)}: build the page with {BUILD}"
    return json.loads(path.read_text())


def test_bundle_has_its_files() -> None:
    for name in ("index.html", "app.js", "app.css", "BUILD.json"):
        assert (STATIC / name).is_file(), f"dashboard/static/{name} missing: run {BUILD}"
    assert not list(STATIC.glob("*.map")), "the bundle ships no source maps"


def test_bundle_is_built_from_the_committed_sources() -> None:
    digest, files = sources_sha256()
    built = build_info()
    if built.get("sources_sha256") != digest:
        recorded = built.get("files") or {}
        assert isinstance(recorded, dict)
        changed = sorted(p for p in set(files) | set(recorded) if files.get(p) != recorded.get(p))
        pytest.fail(
            "dashboard/static is stale: the page's sources changed since it was built "
            f"({', '.join(changed) or 'hash differs'}); rebuild it with {BUILD} and commit "
            "dashboard/static"
        )


def test_bundle_files_are_as_built() -> None:
    """The bundle's files are the build's output, not edited by hand afterwards."""
    outputs = build_info().get("outputs") or {}
    assert isinstance(outputs, dict) and "app.js" in outputs, (
        f"BUILD.json lacks outputs: run {BUILD}"
    )
    shipped = {p.name for p in STATIC.iterdir() if p.is_file() and p.name != "BUILD.json"}
    assert shipped == set(outputs), f"dashboard/static differs from its build: run {BUILD}"
    for name, digest in outputs.items():
        actual = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()
        assert actual == digest, f"dashboard/static/{name} was changed after the build: run {BUILD}"


class _References(HTMLParser):
    """Every URL an HTML document loads or links to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data") and value:
                self.urls.append(value)


def _external(url: str) -> bool:
    """A URL with a scheme (but data:) or a network path (//host/...): loaded from elsewhere."""
    return bool(re.match(r"^([a-z][a-z0-9+.-]*:|//)", url, re.I)) and not url.startswith("data:")


def test_index_references_only_local_files() -> None:
    parser = _References()
    parser.feed((STATIC / "index.html").read_text())
    assert "static/app.js" in parser.urls and "static/app.css" in parser.urls, parser.urls
    external = [u for u in parser.urls if _external(u)]
    assert not external, f"index.html references outside files: {external}"
    for url in parser.urls:
        if url.startswith(("data:", "#")):
            continue
        local = STATIC / url.removeprefix("static/")
        assert local.is_file(), f"index.html references {url}, which the bundle lacks"


def test_bundle_loads_nothing_from_the_network() -> None:
    """No CDN font, script or stylesheet: the dashboard serves everything it needs (it often runs
    where nothing outside can be reached)."""
    css = (STATIC / "app.css").read_text()
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", css), (
        "app.css loads a remote resource"
    )
    js = (STATIC / "app.js").read_text()
    assert not re.search(r"""import\(\s*['"](https?:)?//|importScripts\(""", js), (
        "app.js loads a remote module"
    )
