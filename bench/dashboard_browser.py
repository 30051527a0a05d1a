"""The dashboard page's load and scroll times in headless Chromium, for ``dashboard_cost``.

Playwright (a dev dependency) drives the Chromium at ``browser`` (Debian's ``/usr/bin/chromium``
in CI; ``tools/dashboard/install_browser.sh``). ``pages`` pages are opened at once, as ten people
would; the first one is timed: from the navigation to the first row of the jobs view, then from a
jump to the middle and to the end of the list until that row is drawn from its fetched window.
A screenshot of the loaded list is written to ``out``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

__all__ = ["page_figures"]

ROW = '[data-testid=job-row][aria-rowindex="{}"]'
ROW_HEIGHT_PX = 34  # the jobs view's fixed row height (dashboard/ui/src/views/jobs.js)


def _console_error(message: Any, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(message.text)


def page_figures(browser: str, url: str, pages: int, out: Path) -> dict[str, Any]:
    """Milliseconds: ``load`` (median and max of 3 fresh loads), ``jump_middle``,
    ``jump_end``; ``console_errors`` of every page; ``total_text`` the page's job count."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=browser, headless=True)
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 860})
            errors: list[str] = []
            opened = []
            for _ in range(pages):
                page = context.new_page()
                page.on("console", lambda m: _console_error(m, errors))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(url + "#/jobs")
                page.wait_for_selector(ROW.format(2), timeout=60_000)
                opened.append(page)
            page = opened[0]
            loads = []
            for _ in range(3):
                start = time.perf_counter()
                page.goto("about:blank")
                page.goto(url + "#/jobs")
                page.wait_for_selector(ROW.format(2), timeout=60_000)
                loads.append((time.perf_counter() - start) * 1000)
            total_text = page.inner_text("[data-testid=jobs-total]")
            page.screenshot(path=str(out / "dashboard-50k.png"))
            scroller = page.locator("[data-testid=jobs-scroll]")
            total = int("".join(ch for ch in total_text if ch.isdigit()) or 0)
            jumps: dict[str, float] = {}
            for name, index in (("jump_middle", total // 2), ("jump_end", max(0, total - 10))):
                start = time.perf_counter()
                scroller.evaluate("(el, top) => { el.scrollTop = top; }", index * ROW_HEIGHT_PX)
                page.wait_for_selector(ROW.format(index + 2), timeout=30_000)
                jumps[name] = round((time.perf_counter() - start) * 1000, 1)
            return {
                "load_ms": {"median": round(statistics.median(loads), 1), "max": round(max(loads))},
                **jumps,
                "total_text": total_text,
                "console_errors": errors,
                "screenshot": str(out / "dashboard-50k.png"),
            }
        finally:
            chromium.close()
