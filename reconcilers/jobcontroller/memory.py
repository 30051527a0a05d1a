"""``JobMemory``: what a job controller remembers about one job between its reconciles.

Everything per job lives in one object keyed by the job's UID and is forgotten in one call when the
job is deleted or re-created under the same name, so no per-job dict can leak or outlive its job.
Expectations and the exit log are shared with the event handlers; ``JobMemories.forget`` clears
them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.exits import ExitLog

__all__ = ["JobMemories", "JobMemory"]


@dataclass(slots=True)
class JobMemory:
    """One job's state in the controller (the job with UID ``uid``)."""

    uid: str
    written_rv: str | None = None
    """resourceVersion of our last write to the job, until the cache shows it (or newer): a job
    decided on from a staler cache would count a Created condition or a transition twice."""
    status_written_at: float | None = None
    """Monotonic time of our last status write (``status_batch_seconds``)."""
    applied: dict[tuple[str, str], Obj] = field(default_factory=dict)
    """(resource plural, name) -> the body last applied, for extra objects that are not cached."""
    pods_timed: bool = False
    """The all-pods-created time was observed (once per job)."""

    def cache_caught_up(self, cached_rv: str) -> bool:
        """True when the cached job shows our last write (and then stops waiting for it)."""
        written = self.written_rv
        if written is None:
            return True
        if cached_rv == written or (
            cached_rv.isdigit() and written.isdigit() and int(cached_rv) > int(written)
        ):
            self.written_rv = None
            return True
        return False

    def note_written(self, stored: Obj) -> None:
        """Remember the resourceVersion the API server gave our write."""
        rv = (stored.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.written_rv = str(rv)


class JobMemories:
    """``JobMemory`` by job key; a key whose job has another UID now starts afresh."""

    __slots__ = ("_by_key", "_exits", "_expectations")

    def __init__(self, expectations: Expectations, exits: ExitLog) -> None:
        self._expectations = expectations
        self._exits = exits
        self._by_key: dict[str, JobMemory] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def for_job(self, key: str, uid: str) -> JobMemory:
        """The memory of the job ``key`` with ``uid``; a re-created job's old memory goes."""
        memory = self._by_key.get(key)
        if memory is not None and memory.uid == uid:
            return memory
        if memory is not None:
            self.forget(key)
        memory = self._by_key[key] = JobMemory(uid)
        return memory

    def forget(self, key: str) -> None:
        """Drop everything remembered about the job ``key`` (deleted or re-created)."""
        memory = self._by_key.pop(key, None)
        if memory is None:
            return
        self._expectations.forget(memory.uid)
        self._exits.forget(memory.uid)
