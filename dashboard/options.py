"""``DashboardOptions``: what a dashboard serves and how, from ``kubetrain dashboard``'s flags or
``kubetrain up``.

The flags are the contract's (docs/dashboard.md); the rest are the timings of the live stream,
kept here so tests can shorten them and a fake clock can drive them.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetrain.base.clock import REAL_CLOCK, Clock

__all__ = ["DEFAULT_BIND", "DashboardOptions", "parse_bind"]

DEFAULT_BIND = "127.0.0.1:8090"


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardOptions:
    """A dashboard's settings (docs/dashboard.md: the command's flags)."""

    bind: str = DEFAULT_BIND
    """``HOST:PORT`` to listen on; port 0 picks a free one."""
    bind_fallback: bool = False
    """When ``bind``'s port is taken, listen on a free port of the same host instead of failing
    (``kubetrain up``); ``Dashboard.fell_back`` then says so."""
    namespace: str | None = None
    """Watch only this namespace; None: every namespace the credentials can list."""
    read_only: bool = False
    """No actions: the action endpoints answer 403."""
    metrics_url: str | None = None
    """The operator's ``/metrics``, scraped for the operator view; None: no operator view."""
    metrics_interval: float = 5.0
    """Seconds between scrapes of ``metrics_url``."""
    metrics_points: int = 720
    """Points kept per series (an hour at 5 s)."""
    coalesce_seconds: float = 0.2
    """At most one ``jobs`` (and one ``job``) event per this many seconds per stream."""
    keepalive_seconds: float = 15.0
    """A comment line on every stream this often, so proxies keep it open."""
    client_queue: int = 256
    """Events queued per stream; a client that falls this far behind is dropped."""
    sync_timeout: float = 60.0
    """Seconds ``start`` waits for the informers' first lists."""
    clock: Clock = REAL_CLOCK
    """The time of the stream's coalescing and keepalives and of the scrapes."""

    def __post_init__(self) -> None:
        parse_bind(self.bind)
        if self.metrics_interval <= 0:
            raise ValueError(f"--metrics-interval must be > 0, got {self.metrics_interval}")
        if self.metrics_points < 2:
            raise ValueError(f"metrics_points must be >= 2, got {self.metrics_points}")
        if self.client_queue < 1:
            raise ValueError(f"client_queue must be >= 1, got {self.client_queue}")


def parse_bind(bind: str, *, flag: str = "--bind") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8090`` for IPv6) as (host, port); ValueError naming the problem
    (and ``flag``, the option it came from)."""
    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{flag} {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8090")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"{flag} {bind!r}: port {port} is not a TCP port")
    return host.strip("[]") or "127.0.0.1", port
