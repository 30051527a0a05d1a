"""``Outcome``: what applying one decision's writes produced, collected across its steps."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Outcome"]


@dataclass(slots=True)
class Outcome:
    """Filled by the children, extras and status steps of one reconcile."""

    conflicts: int = 0
    """Creations answered 409 or skipped because the cache already held the name."""
    failures: list[str] = field(default_factory=list)
    """One line per write that failed; any makes the reconcile fail (retried with backoff)."""
    created_pods: list[str] = field(default_factory=list)
    created_services: list[str] = field(default_factory=list)
    status_deferred: float | None = None
    """Seconds until a replica-count-only status change may be written
    (``status_batch_seconds``)."""
