"""The load scenarios of ``kubetrain bench`` (BENCHMARKS.md), one module each; ``SCENARIOS`` maps
a scenario name to its ``run`` coroutine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from . import backlog, burst, chaos, churn, contention, failover, soak, ttl
from .context import BenchContext

__all__ = ["SCENARIOS"]

SCENARIOS: dict[str, Callable[[BenchContext], Awaitable[dict[str, Any]]]] = {
    "backlog": backlog.run,
    "burst": burst.run,
    "chaos": chaos.run,
    "churn": churn.run,
    "contention": contention.run,
    "failover": failover.run,
    "soak": soak.run,
    "ttl": ttl.run,
}
