"""The operator's HTTP side: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for kubelet
probes, served by aiohttp.

The manager starts these servers first (before any cache fills) so a scrape or probe never finds
the port closed during a slow start, and stops them last. Readiness and liveness are lists of
named checks (controller-runtime's ``healthz`` package): a check is a function that returns (or
is an awaitable that returns) when healthy and raises when not; the exception text is the reason.
The aggregate endpoint answers ``200 ok`` when every check passes, else ``500`` with one
``[+]name ok`` / ``[-]name failed: reason`` line per check; ``?verbose`` lists them on success too,
``?exclude=name`` skips a check, ``/readyz/<name>`` runs one.

Bind addresses use the Go form of the reference flags: ``":8080"`` (all interfaces),
``"127.0.0.1:8080"``, ``":0"`` (a free port: see ``HttpServer.port``), and ``"0"`` or ``""``
to disable the server.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from ssl import SSLContext

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

__all__ = [
    "Checker",
    "Handler",
    "HealthCheckCollector",
    "HealthChecks",
    "HttpServer",
    "Route",
    "metrics_route",
    "parse_bind_address",
    "ping",
]

log = logging.getLogger(__name__)

Checker = Callable[[], Awaitable[None] | None]
"""A health check: returns when healthy, raises (with the reason as message) when not."""


def ping() -> None:
    """The check that always passes (controller-runtime's ``healthz.Ping``)."""
    return None


def parse_bind_address(address: str) -> tuple[str | None, int] | None:
    """``":8080"`` -> ``(None, 8080)`` (all interfaces), ``"127.0.0.1:0"`` -> ``("127.0.0.1", 0)``;
    ``"0"`` or ``""`` -> None (disabled). Raises ``ValueError`` naming the expected form."""
    text = address.strip()
    if text in ("", "0"):
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(
            f"bind address {address!r} must be HOST:PORT or :PORT (e.g. ':8080', "
            "'127.0.0.1:8081'), or '0' to disable"
        )
    host = host.strip("[]")  # "[::1]:8080"
    return (host or None, int(port_text))


@dataclass(slots=True)
class HealthChecks:
    """Named checks behind one endpoint (``/healthz`` or ``/readyz``)."""

    path: str
    """The endpoint, e.g. ``/readyz``."""
    checks: dict[str, Checker] = field(default_factory=dict)

    def add(self, name: str, check: Checker) -> None:
        """Add check ``name``; raises ``ValueError`` if the name is taken or not URL-safe."""
        if not name or "/" in name:
            raise ValueError(f"{self.path} check name {name!r} must be non-empty without '/'")
        if name in self.checks:
            raise ValueError(f"{self.path} already has a check named {name!r}")
        self.checks[name] = check

    async def run(self, *, exclude: frozenset[str] = frozenset()) -> list[tuple[str, str | None]]:
        """Run the checks in order: ``(name, None)`` for a pass, ``(name, reason)`` for a fail."""
        results: list[tuple[str, str | None]] = []
        for name, check in self.checks.items():
            if name in exclude:
                continue
            results.append((name, await _run_check(check)))
        return results

    def routes(self) -> list[Route]:
        """The aiohttp routes: the aggregate endpoint and one per check."""
        return [
            Route(self.path, self._aggregate),
            Route(self.path + "/{name}", self._single),
        ]

    async def _aggregate(self, request: web.Request) -> web.Response:
        exclude = frozenset(request.query.getall("exclude", []))
        results = await self.run(exclude=exclude)
        failed = any(reason is not None for _, reason in results)
        verbose = "verbose" in request.query
        if not failed and not verbose:
            return web.Response(text="ok")
        lines = [
            f"[+]{name} ok" if reason is None else f"[-]{name} failed: {reason}"
            for name, reason in results
        ]
        lines.extend(f"{name} excluded: ok" for name in sorted(exclude))
        what = self.path.strip("/")
        lines.append(f"{what} check failed" if failed else f"{what} check passed")
        return web.Response(text="\n".join(lines) + "\n", status=500 if failed else 200)

    async def _single(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        check = self.checks.get(name)
        if check is None:
            raise web.HTTPNotFound(text=f"no {self.path} check named {name!r}\n")
        reason = await _run_check(check)
        if reason is None:
            return web.Response(text="ok")
        return web.Response(text=f"internal server error: {reason}\n", status=500)


class HealthCheckCollector:
    """``kubetrain_health_check{endpoint, check}``: 1 while a check passes, 0 while it fails,
    evaluated at each scrape, so an alert can say "not ready" without a probe's view. A check
    that is a coroutine cannot run inside a scrape: it reports NaN."""

    def __init__(self, *endpoints: HealthChecks) -> None:
        self._endpoints = endpoints

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "kubetrain_health_check",
            "1 while the named /healthz or /readyz check passes, 0 while it fails.",
            labels=["endpoint", "check"],
        )
        for endpoint in self._endpoints:
            for name, check in endpoint.checks.items():
                family.add_metric([endpoint.path.strip("/"), name], _check_now(check))
        yield family

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected fresh at every scrape; nothing to pre-register


def _check_now(check: Checker) -> float:
    try:
        result = check()
    except Exception:
        return 0.0
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # never awaited: do not leak a "never awaited" coroutine
        return math.nan
    return 1.0


async def _run_check(check: Checker) -> str | None:
    try:
        result = check()
        if inspect.isawaitable(result):
            await result
    except Exception as e:
        return str(e) or type(e).__name__
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp request handler."""


@dataclass(frozen=True, slots=True)
class Route:
    """A GET route of an ``HttpServer``."""

    path: str
    handler: Handler


def metrics_route(registry: CollectorRegistry | None = None, *, path: str = "/metrics") -> Route:
    """``GET /metrics``: ``registry`` (default: global) in the format the scraper accepts."""
    reg = REGISTRY if registry is None else registry

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(reg)
        return web.Response(body=body, headers={"Content-Type": content_type})

    return Route(path, metrics)


class HttpServer:
    """One aiohttp listener serving GET routes; ``start``/``stop`` are for the manager."""

    def __init__(
        self,
        *,
        name: str,
        address: tuple[str | None, int],
        routes: list[Route],
        ssl: SSLContext | None = None,
    ) -> None:
        """``name`` is for logs; ``address`` comes from ``parse_bind_address``; ``ssl``: serve
        HTTPS with this context (its certificate may be swapped while serving)."""
        self.name = name
        self._host, self._port = address
        self._ssl = ssl
        app = web.Application()
        for route in routes:
            app.router.add_get(route.path, route.handler)
        self._paths = frozenset(route.path for route in routes)
        self._runner = web.AppRunner(app, access_log=None)
        self._bound_port: int | None = None

    def serves(self, path: str) -> bool:
        """True when ``path`` is one of this server's routes."""
        return path in self._paths

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0); raises before ``start``."""
        if self._bound_port is None:
            raise RuntimeError(f"{self.name} server is not started")
        return self._bound_port

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` (e.g. address in use) with the address."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            raise OSError(
                e.errno, f"{self.name} server cannot bind {self._host or ''}:{self._port}: {e}"
            ) from e
        sockets = self._runner.addresses
        self._bound_port = int(sockets[0][1]) if sockets else self._port
        log.info(
            "%s server listening on %s:%s (%s)",
            self.name,
            self._host or "*",
            self._bound_port,
            "https" if self._ssl is not None else "http",
        )

    async def stop(self) -> None:
        """Close the listener and open connections."""
        await self._runner.cleanup()
