"""The reconcile contract: what a controller hands a reconciler and what it gets back.

A reconciler is level-based: it receives a *key* (``Request``), reads the current state from
listers, makes the world match, and says when to look again (``Result``). It never receives an
event payload and never sleeps: timed work is ``Result(requeue_after=...)``.

How the controller treats each outcome (controller-runtime's table, DESIGN.md):

======================================  =====================================  ===============
outcome                                 queue action                           ``result`` label
======================================  =====================================  ===============
raises ``TerminalError``                ``forget``; not retried                ``error``
raises anything else (or times out)     ``add_rate_limited`` (backoff grows)   ``error``
``Result(requeue_after=s)``, ``s > 0``  ``forget`` + ``add_after(s)``          ``requeue_after``
``Result(requeue=True)``                ``add_rate_limited``                   ``requeue``
``Result()``                            ``forget``                             ``success``
======================================  =====================================  ===============

An exception wins over any result; ``requeue_after`` wins over ``requeue``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubetrain.base.objects import split_key

__all__ = ["Reconciler", "Request", "Result", "TerminalError", "new_reconcile_id"]

#: Hex digits in a reconcile id (48 random bits): short enough to read in logs, unique enough to
#: tell apart the reconciles of one key over a day.
RECONCILE_ID_LENGTH = 12

# Not ``uuid4``: it reads os.urandom on every call (about 2 us, 1.4 % of the operator's CPU in a
# burst); log correlation needs no cryptographic randomness. Seeded from os.urandom once.
_ids = random.Random()
_ID_BITS = RECONCILE_ID_LENGTH * 4


def new_reconcile_id() -> str:
    """A fresh short random id for one reconcile call: ``RECONCILE_ID_LENGTH`` hex digits."""
    return f"{_ids.getrandbits(_ID_BITS):0{RECONCILE_ID_LENGTH}x}"


@dataclass(frozen=True, slots=True)
class Request:
    """One reconcile call: which object (by key) and this call's id for logs."""

    namespace: str | None
    """The object's namespace; None for cluster-scoped objects."""
    name: str
    reconcile_id: str
    """Unique per call (``new_reconcile_id``); every log line of the call carries it."""

    @property
    def key(self) -> str:
        """``namespace/name`` (``name`` when cluster-scoped): the work-queue and cache key."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def from_key(cls, key: str, *, reconcile_id: str | None = None) -> Request:
        """The request for a queue key; a new ``reconcile_id`` unless one is given."""
        namespace, name = split_key(key)
        return cls(namespace, name, reconcile_id or new_reconcile_id())


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What to do with the key after a successful reconcile. ``Result()`` means "done"."""

    requeue: bool = False
    """Reconcile again soon, with rate-limited backoff (prefer ``requeue_after``)."""
    requeue_after: float | None = None
    """Reconcile again after this many seconds (TTL, deadlines); resets the key's backoff."""
    priority: int | None = None
    """Queue priority of the requeue; None: normal priority."""

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError(
                f"Result.requeue_after must be >= 0 seconds or None, got {self.requeue_after}"
            )


class TerminalError(Exception):
    """Raise from a reconciler when retrying cannot help (invalid spec, unsupported kind).

    The controller logs it, counts it in ``controller_runtime_terminal_reconcile_errors_total``
    and forgets the key; only a new event for the object reconciles it again.
    """


Reconciler = Callable[[Request], Awaitable[Result]]
"""``async def reconcile(request: Request) -> Result`` (a function or a bound method).

Contract: idempotent; reads from listers (never the API for reads on the hot path); copies cached
objects before changing them; returns quickly (the controller may cancel it after its timeout);
may raise (see the module table).
"""
