"""``kubetrain_health_check``: each /healthz and /readyz check as a gauge, evaluated at scrape."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from kubetrain.engine.health import HealthCheckCollector, HealthChecks


def test_each_check_is_a_gauge_evaluated_at_scrape() -> None:
    healthz, readyz = HealthChecks("/healthz"), HealthChecks("/readyz")
    state = {"synced": False}

    def caches() -> None:
        if not state["synced"]:
            raise RuntimeError("not synced")

    async def later() -> None:
        return None

    healthz.add("ping", lambda: None)
    readyz.add("informers", caches)
    readyz.add("async", later)
    registry = CollectorRegistry()
    registry.register(HealthCheckCollector(healthz, readyz))

    def value(endpoint: str, check: str) -> float:
        got = registry.get_sample_value(
            "kubetrain_health_check", {"endpoint": endpoint, "check": check}
        )
        assert got is not None
        return got

    assert value("healthz", "ping") == 1.0
    assert value("readyz", "informers") == 0.0
    assert math.isnan(value("readyz", "async"))  # a coroutine cannot run inside a scrape
    state["synced"] = True
    assert value("readyz", "informers") == 1.0
