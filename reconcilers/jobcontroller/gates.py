"""The reconcile gates: conditions under which a job must not be decided on yet.

A job is decided on only when the cache shows our last write to it (else a Created condition or a
transition would be counted twice) and when the creations and deletions of the previous decision
were observed (else a pod could be created twice, or a restart counted twice).
"""

from __future__ import annotations

import logging

from kubetrain.engine.reconcile import Result
from kubetrain.reconcilers.common.expectations import Expectations

from .memory import JobMemory

__all__ = ["closed_gate"]

log = logging.getLogger(__name__)


def closed_gate(
    memory: JobMemory, cached_rv: str, expectations: Expectations, *, stale_requeue: float
) -> Result | None:
    """None when the job may be decided on now; else the ``Result`` to return instead (a
    requeue when the cache or the expectations will catch up)."""
    if not memory.cache_caught_up(cached_rv):
        return Result(requeue_after=stale_requeue)
    if not expectations.satisfied(memory.uid):
        wait = expectations.seconds_until_timeout(memory.uid)
        log.debug("waiting for expectations %s", expectations.pending(memory.uid))
        return Result(requeue_after=wait) if wait else Result()
    return None
