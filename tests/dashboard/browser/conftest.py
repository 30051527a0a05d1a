"""Fixtures of the dashboard's browser tests: a real `kubetrain up` with its dashboard, a
headless Chromium driven by Playwright, pages that record their console, and the artifacts
directory (screenshots, the measured update latency).

The browser is Debian's /usr/bin/chromium (tools/dashboard/install_browser.sh); Playwright never
downloads one. Without it, or without the Python package playwright, the tests skip saying why;
with KUBETRAIN_REQUIRE_BROWSER=1 (CI) they fail instead, so a broken install cannot pass unseen.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path(os.environ.get("KUBETRAIN_CHROMIUM", "/usr/bin/chromium"))
REQUIRE = os.environ.get("KUBETRAIN_REQUIRE_BROWSER") == "1"
KUBETRAIN = shutil.which("kubetrain", path=str(Path(sys.executable).parent)) or ""
#: How long `kubetrain up` may take to run its examples and say it is serving.
UP_TIMEOUT = 180.0


def artifacts_dir() -> Path:
    """$KUBETRAIN_ARTIFACTS, or build/artifacts/dashboard in the repository."""
    configured = os.environ.get("KUBETRAIN_ARTIFACTS")
    path = Path(configured) if configured else ROOT / "build" / "artifacts" / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no browser at {CHROMIUM}: run tools/dashboard/install_browser.sh"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing: pip install -e '.[dev]'"
    if not (ROOT / "dashboard" / "static" / "index.html").is_file():
        return "the page is not built (dashboard/static/index.html): run tools/dashboard/build.sh"
    if not KUBETRAIN:
        return f"no kubetrain entry point beside {sys.executable}: pip install -e ."
    return None


@pytest.fixture(scope="session")
def browser_ready() -> None:
    reason = _missing()
    if reason is None:
        return
    if REQUIRE:
        pytest.fail(f"KUBETRAIN_REQUIRE_BROWSER=1, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return artifacts_dir()


@dataclass
class Up:
    """A running `kubetrain up`: its dashboard's URL, kubeconfig and output so far."""

    process: subprocess.Popen[str]
    url: str
    kubeconfig: str
    lines: list[str]


def _read(process: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "kubetrain is serving" in line:
            ready.set()
    ready.set()  # it exited: let the waiter see why


@pytest.fixture(scope="module")
def up(
    browser_ready: None, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[Up]:
    """`kubetrain up --progress plain --dashboard-bind 127.0.0.1:0`: the embedded cluster, the
    operator, the example jobs (one per kind) and the dashboard; it keeps serving after the jobs
    finish. Stopped with Ctrl-C (SIGINT) as a user would."""
    workdir = tmp_path_factory.mktemp("up")
    kubeconfig = workdir / "kubeconfig"
    command = [
        KUBETRAIN,
        "up",
        "--progress",
        "plain",
        "--port",
        "0",
        "--dashboard-bind",
        "127.0.0.1:0",
        "--kubeconfig",
        str(kubeconfig),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "120"}
    process = subprocess.Popen(
        command, cwd=workdir, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_read, args=(process, lines, ready), daemon=True).start()
    try:
        if not ready.wait(UP_TIMEOUT) or process.poll() is not None:
            pytest.fail(
                f"kubetrain up did not say it is serving within {UP_TIMEOUT:.0f} s "
                f"(exit {process.poll()}):\n" + "\n".join(lines[-60:]),
                pytrace=False,
            )
        # the block after "kubetrain is serving" names the kubeconfig and the dashboard's URL
        url = kubeconfig_shown = None
        deadline = time.monotonic() + 30
        while not (url and kubeconfig_shown) and time.monotonic() < deadline:
            for line in list(lines):
                if m := re.match(r"\s+dashboard\s+(http://\S+)", line):
                    url = m.group(1)
                if m := re.match(r"\s+kubeconfig\s+(\S+)", line):
                    kubeconfig_shown = m.group(1)
            time.sleep(0.05)
        shown = "\n".join(lines)
        assert url, "kubetrain up printed no dashboard URL:\n" + shown
        assert kubeconfig_shown, "kubetrain up printed no kubeconfig:\n" + shown
        assert Path(kubeconfig_shown).resolve() == kubeconfig.resolve(), kubeconfig_shown
        yield Up(process, url, kubeconfig_shown, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        worker = os.environ.get("PYTEST_XDIST_WORKER")  # one `kubetrain up` per xdist worker
        name = f"kubetrain-up-{worker}.log" if worker else "kubetrain-up.log"
        (artifacts / name).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def browser(browser_ready: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    """What a page said on its console: errors and uncaught exceptions fail the test."""

    errors: list[str] = field(default_factory=list)
    checked: bool = False

    def check(self, allow: tuple[str, ...] = ()) -> None:
        """Fail on any console error or page error, but those containing a string of ``allow``
        (the browser's own line for an HTTP error answer a test provoked on purpose)."""
        self.checked = True
        unexpected = [e for e in self.errors if not any(a in e for a in allow)]
        assert not unexpected, "the page reported errors:\n" + "\n".join(unexpected)


@dataclass
class Page:
    page: Any
    console: Console
    base: str

    def open(self, route: str) -> None:
        """Go to a hash route of the dashboard (a fresh load of the page)."""
        self.page.goto(self.base + route)


@pytest.fixture
def page(browser: Any, up: Up) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    console = Console()
    tab.on(
        "console", lambda m: m.type == "error" and console.errors.append(f"console.error: {m.text}")
    )
    tab.on("pageerror", lambda e: console.errors.append(f"pageerror: {e}"))
    tab.set_default_timeout(20_000)
    try:
        yield Page(tab, console, up.url)
        if not console.checked:
            console.check()
    finally:
        context.close()


#: The user property a test records a line of the terminal summary under (record_property):
#: properties travel from pytest-xdist workers to the controller, module globals do not.
SUMMARY = "dashboard_summary"


@pytest.fixture
def summary(record_property: Any) -> Any:
    """summary(line): show ``line`` in the terminal summary, even when output is captured."""
    return lambda line: record_property(SUMMARY, line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == SUMMARY
    ]
    if lines:
        terminalreporter.section("dashboard browser tests")
        for line in lines:
            terminalreporter.write_line(line)
