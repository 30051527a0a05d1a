"""The priority of the API requests a piece of code sends: a context variable, not an argument.

Why: when the client's in-flight limit is full (``adaptive_limit``), requests queue for a slot.
A job's status write or TTL deletion is one request that finishes a piece of work; it should not
wait behind a burst of other jobs' pod creations, each many requests. The code that knows which
is which (a reconciler) is several calls above the client, so the priority travels in the
asyncio context, like a Go ``context.Context`` value: ``with request_priority(n): await
client.update_status(...)``. Every request sent inside the block, and by tasks created inside it,
queues at ``n``; elsewhere at 0. Higher goes first.

The fixed ``--kube-api-qps`` cap, when a user sets one, stays first come, first served.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_request_priority", "request_priority"]

_PRIORITY: ContextVar[int] = ContextVar("kubetrain_request_priority", default=0)


def current_request_priority() -> int:
    """The priority requests sent from here queue at (0 outside any ``request_priority``)."""
    return _PRIORITY.get()


@contextmanager
def request_priority(priority: int) -> Iterator[None]:
    """Send the requests of the block at ``priority`` (restored on exit, also on errors)."""
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)
