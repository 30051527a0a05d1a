"""One set of metric families per Prometheus registry, shared by every component built on it.

prometheus-client refuses a second metric of the same name in one registry, yet API clients,
controllers, event recorders and leader electors are built many times in one process (tests,
``kubetrain up``, two managers side by side). Each family set is therefore made on first use per
registry and shared after; registries are held weakly so a test's private registry can go away.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry

T = TypeVar("T")

_MADE: dict[Callable[..., Any], weakref.WeakKeyDictionary[CollectorRegistry, Any]] = {}


def once_per_registry(
    factory: Callable[[CollectorRegistry], T], registry: CollectorRegistry | None = None
) -> T:
    """``factory(registry)``, called once per (factory, registry); ``None`` is the global one."""
    reg = REGISTRY if registry is None else registry
    made = _MADE.setdefault(factory, weakref.WeakKeyDictionary())
    found = made.get(reg)
    if found is None:
        found = made[reg] = factory(reg)
    return found  # type: ignore[no-any-return]
