"""The jobs view with 50,000 jobs: it loads windows of api/jobs as the user scrolls, never all
rows, and keeps the DOM small. The API is played by the test (Playwright routes: the built page
from dashboard/static, synthetic rows from /api/jobs), so the test needs no cluster and no
50,000 real jobs; what it checks is the page's side of the contract (offset/limit windows).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = [pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "dashboard" / "static"
BASE = "http://dashboard.test/"
TOTAL = 50_000
STATES = ("Running", "Succeeded", "Failed", "Suspended")
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
}


def synthetic_row(i: int) -> dict[str, Any]:
    return {
        "kind": "PyTorchJob",
        "namespace": f"team-{i % 20:02d}",
        "name": f"job-{i:05d}",
        "uid": f"uid-{i}",
        "state": STATES[i % len(STATES)],
        "replicas": 3,
        "ready": 3 if i % 4 == 0 else 0,
        "created": 1_700_000_000.0 + i,
        "finished": None if i % 4 in (0, 3) else 1_700_000_100.0 + i,
    }


class FakeApi:
    """Serves the page and answers the API for a list of TOTAL jobs; records the windows asked."""

    def __init__(self) -> None:
        self.windows: list[tuple[int, int]] = []

    def handle(self, route: Any) -> None:
        url = urlparse(route.request.url)
        path = url.path
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/":
            route.fulfill(path=str(STATIC / "index.html"), content_type="text/html")
        elif path.startswith("/static/"):
            file = STATIC / path.removeprefix("/static/")
            route.fulfill(
                path=str(file), content_type=TYPES.get(file.suffix, "application/octet-stream")
            )
        elif path == "/api/info":
            self.json(
                route,
                {
                    "version": "test",
                    "readOnly": True,
                    "namespace": None,
                    "kinds": ["PyTorchJob"],
                    "metrics": False,
                    "server": "fake",
                },
            )
        elif path == "/api/jobs":
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            assert limit <= 500, limit  # the contract's cap: the page never asks for everything
            self.windows.append((offset, limit))
            items = [synthetic_row(i) for i in range(offset, min(TOTAL, offset + limit))]
            counts = {s: TOTAL // len(STATES) for s in STATES}
            self.json(
                route,
                {"total": TOTAL, "offset": offset, "version": 1, "counts": counts, "items": items},
            )
        else:
            route.fulfill(status=404, content_type="application/json", body='{"message": "no"}')

    @staticmethod
    def socket(ws: Any) -> None:
        """The page's live socket (``api/ws``): one hello, then quiet, never closed."""
        ws.send(json.dumps({"event": "hello", "data": {"version": 1}}))

    @staticmethod
    def json(route: Any, data: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(data))


@pytest.fixture
def fake(browser: Any) -> Iterator[tuple[Any, FakeApi, list[str]]]:
    api = FakeApi()
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.route(f"{BASE}**", api.handle)
    context.route_web_socket(re.compile(r"/api/ws"), api.socket)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, api, errors
    finally:
        context.close()


def test_fifty_thousand_jobs_load_in_windows_and_scroll(
    fake: tuple[Any, FakeApi, list[str]], summary: Any
) -> None:
    page, api, errors = fake
    started = time.monotonic()
    page.goto(BASE + "#/jobs")
    page.wait_for_selector('[data-testid=job-row][data-key="PyTorchJob/team-00/job-00000"]')
    first_rows = time.monotonic() - started
    assert "50,000 jobs" in page.inner_text("[data-testid=jobs-total]")
    scroller = page.locator("[data-testid=jobs-scroll]")
    height = scroller.evaluate("el => el.scrollHeight")
    assert height >= TOTAL * 34, height  # the spacer keeps the whole list's height

    # jump through the list: each position shows its own rows, fetched as a window
    jumps = []
    for target in (1_000, 25_000, 49_990, 12_345, 0):
        t0 = time.monotonic()
        scroller.evaluate("(el, top) => { el.scrollTop = top; }", target * 34)
        key = f"PyTorchJob/team-{target % 20:02d}/job-{target:05d}"
        page.wait_for_selector(f'[data-testid=job-row][data-key="{key}"]', timeout=10_000)
        jumps.append(time.monotonic() - t0)
        drawn = page.locator("[data-testid=job-row]").count()
        assert drawn < 150, f"{drawn} rows in the DOM at row {target}: the list is not virtualized"

    # a smooth scroll, wheel by wheel, over a few thousand rows: every frame has rows on screen
    scroller.evaluate("el => { el.scrollTop = 30000 * 34; }")
    page.wait_for_selector('[data-testid=job-row][data-key="PyTorchJob/team-00/job-30000"]')
    page.mouse.move(640, 500)
    blank_frames = 0
    for _ in range(40):
        page.mouse.wheel(0, 2000)
        page.wait_for_timeout(16)
        # rows drawn at the viewport's middle (loaded or placeholders, never an empty gap)
        visible = scroller.evaluate("""el => {
          const box = el.getBoundingClientRect();
          const hit = document.elementFromPoint(box.left + 100, box.top + box.height / 2);
          return Boolean(hit && hit.closest('tr.job-row'));
        }""")
        blank_frames += not visible
    assert blank_frames == 0, (
        f"{blank_frames} of 40 scroll steps showed no row at the viewport's middle"
    )

    fetched = sum(limit for _, limit in api.windows)
    assert fetched < TOTAL / 5, (
        f"the page read {fetched} rows of {TOTAL}: it should read windows only"
    )
    assert not errors, errors
    summary(
        f"50,000-job list: first rows after {first_rows * 1000:.0f} ms (page load included), "
        f"jumps shown after {', '.join(f'{j * 1000:.0f}' for j in jumps)} ms; "
        f"{len(api.windows)} windows, {fetched} rows read"
    )
