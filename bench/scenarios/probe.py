"""The measured operator's own HTTP endpoints, seen from the harness: ``/readyz`` (caches synced)
and ``/metrics`` (workqueue depth), on ports the harness picks.

``systems.system_process`` starts kubetrain with both endpoints off; ``with_probe_ports`` appends
``--metrics-bind-address``/``--health-probe-bind-address`` on free loopback ports (argparse keeps
the last value of a flag), so scenarios that need the endpoints get them without changing what
``burst`` measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, replace

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ..harness import ManagedProcess
from ..systems import SystemOptions

__all__ = [
    "ProbePorts",
    "free_port",
    "scrape_gauge_sum",
    "scrape_sums",
    "wait_ready",
    "with_probe_ports",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a tiny race with other binders is accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class ProbePorts:
    metrics: int
    health: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics}/metrics"

    @property
    def readyz_url(self) -> str:
        return f"http://127.0.0.1:{self.health}/readyz"


def with_probe_ports(options: SystemOptions) -> tuple[SystemOptions, ProbePorts]:
    """``options`` with kubetrain's metrics and health endpoints on two fresh loopback ports."""
    ports = ProbePorts(metrics=free_port(), health=free_port())
    extra = (
        "--metrics-bind-address", f"127.0.0.1:{ports.metrics}",
        "--health-probe-bind-address", f"127.0.0.1:{ports.health}",
    )  # fmt: skip
    return replace(options, operator_args=(*options.operator_args, *extra)), ports


async def wait_ready(
    session: aiohttp.ClientSession,
    ports: ProbePorts,
    proc: ManagedProcess,
    *,
    timeout: float,
    interval: float = 0.05,
) -> float | None:
    """Poll ``/readyz`` until it answers 200; the monotonic time it did, None on timeout.
    Raises ``HarnessError`` (``check_alive``) when the process exits meanwhile."""
    deadline = time.monotonic() + timeout
    probe_timeout = aiohttp.ClientTimeout(total=2)
    while time.monotonic() < deadline:
        proc.check_alive()
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(ports.readyz_url, timeout=probe_timeout) as resp:
                if resp.status == 200:
                    return time.monotonic()
        await asyncio.sleep(interval)
    return None


async def scrape_gauge_sum(session: aiohttp.ClientSession, url: str, name: str) -> float | None:
    """The sum over all label sets of metric ``name`` at ``url`` (None: unreachable/absent)."""
    return (await scrape_sums(session, url, (name,)))[name]


async def scrape_sums(
    session: aiohttp.ClientSession, url: str, names: tuple[str, ...]
) -> dict[str, float | None]:
    """One scrape of ``url``: per family in ``names`` the sum of its samples over all label
    sets (a gauge's ``name``, a counter's ``name_total``); None when unreachable or absent."""
    out: dict[str, float | None] = dict.fromkeys(names)
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            if resp.status != 200:
                return out
            text = await resp.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return out
    for family in text_string_to_metric_families(text):
        if family.name not in out:
            continue
        wanted = (family.name, family.name + "_total")
        for sample in family.samples:
            if sample.name in wanted:
                out[family.name] = (out[family.name] or 0.0) + sample.value
    return out
