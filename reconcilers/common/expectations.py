"""Expectations: what a job's last reconcile created or deleted and the cache has not shown yet.

Listers lag the API server. Without this guard a reconcile that runs right after creating a pod
would not see it and create it again, or would see a deleted Failed pod still Failed and count a
second restart. ``compute_status``'s caller duty is to not reconcile a job again until its
previous creations and deletions are observed; this store tracks them.

Differences from the reference (section 2.9) and why:

- Keys are the job's **UID** (then replica type and resource), never its name: a job deleted
  and re-created under the same name starts clean (fix of trainer#1306, the 5-minute stall).
- Pending work is tracked **by object name**, not as counters: an observation of an object we
  never expected cannot cancel one we do, and a duplicate watch event cannot count twice.
- The gate is **AND** over every (replica type, resource) of the job: all must be observed.
- Nothing is reset at the start of a reconcile; entries end when observed, when a write failed
  (lowered by the caller), when the job is forgotten, or after ``timeout`` seconds (a safety net
  for an event lost to a watch gap; logged, as that hides a bug or a relist race).

Observation (the caller's duty, from informer handlers): ``observe_created`` on an add (or
update) of an owned object; ``observe_deleted`` when it is gone or carries a deletionTimestamp.
A 409 AlreadyExists on create counts as observed (the deterministic name is taken).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetrain.base.clock import REAL_CLOCK, Clock

__all__ = ["DEFAULT_EXPECTATIONS_TIMEOUT", "ExpectationKey", "Expectations"]

log = logging.getLogger(__name__)

#: Seconds after which an unobserved expectation is given up (the reference's 5 minutes).
DEFAULT_EXPECTATIONS_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class ExpectationKey:
    """One gate of a job: (replica type, resource plural), e.g. ("worker", "pods")."""

    rtype: str
    resource: str


@dataclass(slots=True)
class _Pending:
    """Names still to be seen created / deleted under one key, and when they were raised."""

    adds: set[str] = field(default_factory=set)
    dels: set[str] = field(default_factory=set)
    raised_at: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.adds and not self.dels


class Expectations:
    """Pending creations and deletions per job UID. Not thread-safe (one event loop).

    ``timeout``: seconds after which a pending key counts as satisfied, on ``clock``'s monotonic
    time (tests pass a fake).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_EXPECTATIONS_TIMEOUT,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"Expectations timeout must be > 0 seconds, got {timeout}")
        self.timeout = timeout
        self._now = clock.monotonic
        # job UID -> key -> pending names. Invariant: no _Pending in here is empty.
        self._jobs: dict[str, dict[ExpectationKey, _Pending]] = {}
        # (job UID, resource, object name) -> key, to observe by name without the rtype.
        self._where: dict[tuple[str, str, str], ExpectationKey] = {}

    def __len__(self) -> int:
        """Jobs with pending expectations."""
        return len(self._jobs)

    # -- raising (before the writes) -------------------------------------------------------------

    def expect_creations(self, uid: str, key: ExpectationKey, names: Iterable[str]) -> None:
        """Call before POSTing ``names``; each stays pending until observed or lowered."""
        self._raise(uid, key, names, deleting=False)

    def expect_deletions(self, uid: str, key: ExpectationKey, names: Iterable[str]) -> None:
        """Call before DELETEing ``names``; each stays pending until observed or lowered."""
        self._raise(uid, key, names, deleting=True)

    def _raise(
        self, uid: str, key: ExpectationKey, names: Iterable[str], *, deleting: bool
    ) -> None:
        wanted = list(names)
        if not wanted:
            return
        pending = self._jobs.setdefault(uid, {}).setdefault(key, _Pending())
        pending.raised_at = self._now()
        target = pending.dels if deleting else pending.adds
        for name in wanted:
            target.add(name)
            self._where[(uid, key.resource, name)] = key

    # -- observing (informer handlers; and the caller when a write failed) ------------------------

    def observe_created(self, uid: str, resource: str, name: str) -> None:
        """``name`` exists (seen in the cache, 409 on create, or its create failed: lowered)."""
        self._observe(uid, resource, name, deleting=False)

    def observe_deleted(self, uid: str, resource: str, name: str) -> None:
        """``name`` is gone or terminating (or its delete failed / was NotFound)."""
        self._observe(uid, resource, name, deleting=True)

    def _observe(self, uid: str, resource: str, name: str, *, deleting: bool) -> None:
        keys = self._jobs.get(uid)
        if keys is None:
            return
        key = self._where.get((uid, resource, name))
        if key is None:
            return
        pending = keys.get(key)
        if pending is None:
            return
        (pending.dels if deleting else pending.adds).discard(name)
        if name not in pending.adds and name not in pending.dels:
            self._where.pop((uid, resource, name), None)
        if pending.empty:
            del keys[key]
            if not keys:
                del self._jobs[uid]

    # -- the gate --------------------------------------------------------------------------------

    def satisfied(self, uid: str) -> bool:
        """True when every key of the job is observed (AND), or timed out (then dropped)."""
        keys = self._jobs.get(uid)
        if not keys:
            return True
        now = self._now()
        for key, pending in list(keys.items()):
            if now - pending.raised_at < self.timeout:
                return False
            log.warning(
                "expectations of job uid %s %s timed out after %.0f s; not observed: adds=%s "
                "dels=%s (a watch event was lost; proceeding from the cache)",
                uid,
                key,
                self.timeout,
                sorted(pending.adds),
                sorted(pending.dels),
            )
            self._drop(uid, key, pending)
        return True

    def pending(self, uid: str) -> dict[ExpectationKey, tuple[frozenset[str], frozenset[str]]]:
        """What the job still waits for: key -> (adds, dels). For logs and tests."""
        return {
            key: (frozenset(p.adds), frozenset(p.dels))
            for key, p in (self._jobs.get(uid) or {}).items()
        }

    def seconds_until_timeout(self, uid: str) -> float | None:
        """Seconds until the job's oldest pending key times out; None when nothing is pending."""
        keys = self._jobs.get(uid)
        if not keys:
            return None
        oldest = min(p.raised_at for p in keys.values())
        return max(0.0, oldest + self.timeout - self._now())

    def forget(self, uid: str) -> None:
        """Drop everything of the job (it was deleted)."""
        keys = self._jobs.pop(uid, None)
        for key, pending in (keys or {}).items():
            for name in pending.adds | pending.dels:
                self._where.pop((uid, key.resource, name), None)

    def _drop(self, uid: str, key: ExpectationKey, pending: _Pending) -> None:
        for name in pending.adds | pending.dels:
            self._where.pop((uid, key.resource, name), None)
        keys = self._jobs[uid]
        del keys[key]
        if not keys:
            del self._jobs[uid]
