"""What a Job's last sync asked of the API server and the cache has not shown yet.

``PodExpectations`` are kube's ``ControllerExpectations``: per Job key, pod creations and
deletions still to be observed; a Job is not managed again (no pods created or deleted) until
they are, or ``timeout`` seconds passed (a lost watch event). Counters, not names, as kube: a
pod deleted twice in the cache's eyes (update with deletionTimestamp, then the delete) counts
twice, which only lowers the counter below 0 (satisfied).

``FinalizerExpectations`` (``uidTrackingExpectations``): UIDs of pods whose tracking finalizer
this controller removed, until the cache shows it removed; such pods are not counted again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubetrain.base.clock import Clock

__all__ = ["EXPECTATIONS_TIMEOUT", "FinalizerExpectations", "PodExpectations"]

EXPECTATIONS_TIMEOUT = 300.0


@dataclass(slots=True)
class _Counts:
    adds: int
    dels: int
    set_at: float


class PodExpectations:
    def __init__(self, clock: Clock, *, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._counts: dict[str, _Counts] = {}

    def _raise(self, key: str, adds: int, dels: int) -> None:
        # kube's ExpectCreations/ExpectDeletions replace the record (SetExpectations)
        self._counts[key] = _Counts(adds, dels, self._clock.monotonic())

    def expect_creations(self, key: str, count: int) -> None:
        self._raise(key, count, 0)

    def expect_deletions(self, key: str, count: int) -> None:
        self._raise(key, 0, count)

    def creation_observed(self, key: str) -> None:
        counts = self._counts.get(key)
        if counts is not None:
            counts.adds -= 1

    def deletion_observed(self, key: str) -> None:
        counts = self._counts.get(key)
        if counts is not None:
            counts.dels -= 1

    def satisfied(self, key: str) -> bool:
        counts = self._counts.get(key)
        if counts is None:
            return True
        if counts.adds <= 0 and counts.dels <= 0:
            return True
        return self._clock.monotonic() - counts.set_at > self._timeout

    def delete(self, key: str) -> None:
        self._counts.pop(key, None)


class FinalizerExpectations:
    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expect_removed(self, key: str, uids: Iterable[str]) -> None:
        self._uids.setdefault(key, set()).update(uids)

    def removal_observed(self, key: str, uid: str) -> None:
        uids = self._uids.get(key)
        if uids is not None:
            uids.discard(uid)
            if not uids:
                del self._uids[key]

    def expected(self, key: str) -> frozenset[str]:
        return frozenset(self._uids.get(key, ()))

    def delete(self, key: str) -> None:
        self._uids.pop(key, None)
