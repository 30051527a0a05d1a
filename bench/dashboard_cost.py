"""What the dashboard costs: its API requests with many pages open, and its speed on a big cache.

``python -m kubetrain.bench.dashboard_cost [--jobs 50000] [--pages 10] [--browser PATH]``

The issue's two figures, measured the same way every time:

- **API requests while pages are open.** The dashboard reads through one set of informers, so ten
  open pages must cost the API server exactly what one dashboard costs: discovery, one LIST
  (in pages of 500) and one WATCH per informer, and nothing per page. The dashboard's client
  here records every request it sends; the report gives them before and after the pages open.
- **The page with a big cache.** ``--jobs`` finished PyTorchJobs (pods cleaned, as
  ``cleanPodPolicy: All`` leaves them) are created on an embedded cluster (its own process, so
  its CPU is not the dashboard's); then the dashboard's sync time and memory, the latency of
  ``/api/jobs`` (first page, a deep page, a search), and with ``--browser`` (headless Chromium
  through Playwright) the page's load time until the first rows show and the time to show the
  rows after a scroll to the middle and to the end of the list.

The result is printed and written to ``OUT/dashboard-cost.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from kubetrain.dashboard.options import DashboardOptions
from kubetrain.dashboard.server import Dashboard
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig

from .cli import _install_crds
from .harness import ClusterProcess
from .jobs import JobShape, create_namespace
from .scenarios.backlog import create_backlog

__all__ = ["RecordingClient", "main", "measure"]

NAMESPACE = "dash-backlog"


class RecordingClient(ApiClient):
    """An ``ApiClient`` that records each request it sends as ``"VERB path"``: a GET of a
    collection is ``LIST``, a watch ``WATCH``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
        query: Mapping[str, str] = kwargs.get("query") or {}
        verb = "LIST" if method == "GET" and _is_collection(path) else method
        if verb != "LIST" or not query.get("continue"):  # later pages of one LIST are that LIST
            self.sent.append(f"{verb} {path}")
        return await super().request_bytes(method, path, **kwargs)

    def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
        keep_blank: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self.sent.append(f"{'WATCH' if (query or {}).get('watch') else 'STREAM'} {path}")
        return super().stream_lines(path, query=query, timeout=timeout, keep_blank=keep_blank)


def _is_collection(path: str) -> bool:
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    return len(rest) == 1


async def _watches_open(client: RecordingClient, timeout: float = 10.0) -> None:
    """Until each informer that listed has opened its watch (a reflector watches once its
    list is in the store, just after ``start`` returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        verbs = [sent.split()[0] for sent in client.sent]
        if verbs.count("WATCH") >= verbs.count("LIST"):
            return
        await asyncio.sleep(0.05)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def _timed_get(session: aiohttp.ClientSession, url: str, rounds: int) -> dict[str, float]:
    """Median and max milliseconds of ``rounds`` GETs of ``url``."""
    samples: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
            resp.raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(samples), "max_ms": max(samples)}


async def _open_streams(
    session: aiohttp.ClientSession, base: str, pages: int
) -> list[aiohttp.ClientResponse]:
    """What ``pages`` pages do when they open: the page, its info, the first window of jobs,
    and a live stream each (kept open)."""
    streams = []
    for _ in range(pages):
        for path in ("", "api/info", "api/jobs?limit=50"):
            async with session.get(base + path) as resp:
                await resp.read()
        stream = await session.get(base + "api/stream")
        await stream.content.readline()  # the hello event's first line: subscribed
        streams.append(stream)
    return streams


async def measure(
    *, jobs: int, pages: int, browser: str | None, out: Path, say: Any = print
) -> dict[str, Any]:
    workdir = out / "logs"
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = ClusterProcess(workdir=workdir, nodes=1, node_pods=16)
    say(f"starting the embedded cluster (logs in {workdir})")
    await cluster.start()
    report: dict[str, Any] = {"jobs": jobs, "pages": pages}
    try:
        config = await load_kubeconfig(cluster.kubeconfig)
        options = ClientOptions(qps=0, adaptive=None, registry=CollectorRegistry())
        async with ApiClient(config, options) as harness:
            await _install_crds(harness)
            await create_namespace(harness, NAMESPACE)
            start = time.monotonic()
            await create_backlog(
                harness,
                NAMESPACE,
                jobs=jobs,
                shape=JobShape(),
                concurrency=64,
                say=say,
                with_pods=False,
            )
            report["backlog_seconds"] = round(time.monotonic() - start, 1)
        say(f"{jobs} finished jobs created in {report['backlog_seconds']} s")
        dashboard_client = RecordingClient(
            config, ClientOptions(qps=0, adaptive=None, registry=CollectorRegistry())
        )
        rss_before = _rss_mib()
        dashboard = Dashboard(dashboard_client, DashboardOptions(bind="127.0.0.1:0"))
        start = time.monotonic()
        url = await dashboard.start()
        report["sync_seconds"] = round(time.monotonic() - start, 2)
        report["rows"] = len(dashboard.index)
        report["rss_growth_mib"] = round(_rss_mib() - rss_before, 1)
        await _watches_open(dashboard_client)
        at_start = list(dashboard_client.sent)
        report["requests_at_start"] = at_start
        say(f"dashboard at {url}: {report['rows']} rows in {report['sync_seconds']} s")
        try:
            async with aiohttp.ClientSession() as session:
                streams = await _open_streams(session, url, pages)
                if browser:
                    report["browser"] = await _browser_figures(browser, url, pages, out)
                await asyncio.sleep(2.0)  # anything a page would trigger has had time to go out
                report["requests_with_pages_open"] = dashboard_client.sent[len(at_start) :]
                report["api_jobs"] = {
                    "first_page": await _timed_get(session, url + "api/jobs?limit=50", 20),
                    "deep_page_by_name": await _timed_get(
                        session,
                        url + f"api/jobs?limit=50&sort=name&order=asc&offset={jobs * 4 // 5}",
                        20,
                    ),
                    "search": await _timed_get(session, url + "api/jobs?limit=50&q=old-0421", 20),
                }
                for stream in streams:
                    stream.close()
        finally:
            await dashboard.stop()
            await dashboard_client.close()
    finally:
        await cluster.stop()
    (out / "dashboard-cost.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


async def _browser_figures(browser: str, url: str, pages: int, out: Path) -> dict[str, Any]:
    """Page load and scroll times in headless Chromium, with ``pages`` pages open at once."""
    from kubetrain.bench.dashboard_browser import page_figures

    return await asyncio.to_thread(page_figures, browser, url, pages, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kubetrain.bench.dashboard_cost")
    p.add_argument("--jobs", type=int, default=50_000, help="finished jobs in the cache")
    p.add_argument("--pages", type=int, default=10, help="pages open at once")
    p.add_argument("--browser", default=None, help="Chromium to measure the page with")
    p.add_argument("--out", default=None, help="report folder (default: a temporary one)")
    args = p.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="kubetrain-dashboard-cost-"))
    out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(measure(jobs=args.jobs, pages=args.pages, browser=args.browser, out=out))
    print(json.dumps(report, indent=2))
    print(f"report: {out / 'dashboard-cost.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
