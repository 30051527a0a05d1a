"""``JobIndex``: the dashboard's job rows, kept from informer events, paged, sorted and filtered.

Why not sort the cache per request: with 50,000 jobs a request would sort 50,000 rows, and the
page asks on every change. Each row sits in one sorted list per sort key (``sortedcontainers``),
moved in O(log n) when it changes; a query without filters is a slice of one of them. A query with
filters scans one list once and keeps the matching keys (and the state counts) until the index
changes (``version``), so the next page of the same view, or another client's, is a slice again.

Rows are the contract's (docs/dashboard.md): ``{kind, namespace, name, uid, state, replicas,
ready, created, finished}``; ``ready`` comes from pod events (``pod_changed``), counted per job
from the pods' readiness, never by listing pods.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sortedcontainers import SortedList

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.jobs import unix_time
from kubetrain.reconcilers.jobview import finished_at, job_state, replicas

from .pods import job_key, pod_job_key, pod_ready

__all__ = [
    "MAX_LIMIT",
    "SORTS",
    "JobIndex",
    "JobQuery",
    "Row",
    "make_row",
]

Row = dict[str, Any]
#: The sort keys of ``/api/jobs``; the first is the default.
SORTS = ("created", "name", "namespace", "kind", "state", "duration", "replicas")
MAX_LIMIT = 500
_CACHED_VIEWS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class JobQuery:
    """One ``/api/jobs`` request: a window of one sorted, filtered view."""

    offset: int = 0
    limit: int = 50
    sort: str = "created"
    order: str = "desc"
    kinds: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    namespace: str = ""
    q: str = ""

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        if self.order not in ("asc", "desc"):
            raise ValueError(f"order must be asc or desc, got {self.order!r}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")


def make_row(kind: str, job: Obj, *, ready: int = 0) -> Row:
    """A job's row (module docstring); ``ready`` is the caller's count of its ready pods."""
    meta = job.get("metadata") or {}
    done = finished_at(kind, job)
    return {
        "kind": kind,
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "state": job_state(kind, job),
        "replicas": replicas(kind, job),
        "ready": ready,
        "created": unix_time(meta.get("creationTimestamp")),
        "finished": done.timestamp() if done else None,
    }


def _sort_key(sort: str, row: Row, key: str) -> tuple[Any, ...]:
    """Where ``row`` sits in the ascending order of ``sort``; the job key breaks ties.

    ``duration``: a running job's duration grows with time, so running jobs sort after finished
    ones (as the longest), the oldest first; finished ones by their duration."""
    created = row["created"] or 0.0
    if sort == "created":
        return (created, key)
    if sort == "name":
        return (row["name"], row["namespace"], row["kind"])
    if sort == "namespace":
        return (row["namespace"], row["name"], row["kind"])
    if sort == "kind":
        return (row["kind"], row["namespace"], row["name"])
    if sort == "state":
        return (row["state"], created, key)
    if sort == "duration":
        finished = row["finished"]
        if finished is None:
            return (1, -created, key)
        return (0, finished - created, key)
    return (row["replicas"], created, key)


@dataclass(slots=True)
class _View:
    """A filtered view's keys in ascending order and its state counts, at one version."""

    version: int
    keys: list[str]
    counts: dict[str, int]


Listener = Callable[[str, Row | None], None]


class JobIndex:
    """Rows by job key, in a sorted list per sort key; see the module docstring."""

    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self._keys: dict[str, dict[str, tuple[Any, ...]]] = {}
        self._sorted: dict[str, SortedList] = {sort: SortedList() for sort in SORTS}
        self._counts: dict[str, int] = {}
        # Ready pods per job key (pod namespace/name); jobs appear here before their row may.
        self._ready: dict[str, set[str]] = {}
        self._views: OrderedDict[tuple[Any, ...], _View] = OrderedDict()
        self._listeners: list[Listener] = []
        self.version = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(key, row)`` after each change; ``row`` None for a deletion."""
        self._listeners.append(listener)

    def row(self, key: str) -> Row | None:
        """The row of job ``key`` (``KIND/NS/NAME``), or None. Read-only."""
        return self._rows.get(key)

    def counts(self) -> dict[str, int]:
        """Jobs per state, over every row."""
        return dict(self._counts)

    # -- changes --------------------------------------------------------------------------------

    def upsert(self, kind: str, job: Obj) -> None:
        """The job was added or changed (an informer event)."""
        meta = job.get("metadata") or {}
        key = job_key(kind, meta.get("namespace", ""), meta.get("name", ""))
        row = make_row(kind, job, ready=len(self._ready.get(key, ())))
        self._put(key, row)

    def put_row(self, key: str, row: Row) -> None:
        """Set a ready-made row (tests and benchmarks build 50,000 of them this way)."""
        self._put(key, dict(row))

    def _put(self, key: str, row: Row) -> None:
        old = self._rows.get(key)
        if old == row:
            return
        if old is not None:
            self._unfile(key, old)
        self._rows[key] = row
        keys = {sort: (*_sort_key(sort, row, key), key) for sort in SORTS}
        self._keys[key] = keys
        for sort, k in keys.items():
            self._sorted[sort].add(k)
        self._counts[row["state"]] = self._counts.get(row["state"], 0) + 1
        self._changed(key, row)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """The job is gone (an informer event)."""
        key = job_key(kind, namespace, name)
        old = self._rows.pop(key, None)
        if old is None:
            return
        self._unfile(key, old)
        self._keys.pop(key, None)
        self._changed(key, None)

    def _unfile(self, key: str, old: Row) -> None:
        for sort, k in self._keys[key].items():
            self._sorted[sort].remove(k)
        left = self._counts[old["state"]] - 1
        if left:
            self._counts[old["state"]] = left
        else:
            del self._counts[old["state"]]

    def pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        """A pod was added (``old`` None), changed, or deleted (``new`` None): move its job's
        ready count when its readiness or its job changed."""
        before = pod_job_key(old) if old is not None else None
        after = pod_job_key(new) if new is not None else None
        ready_before = before is not None and old is not None and pod_ready(old)
        ready_after = after is not None and new is not None and pod_ready(new)
        if before == after and ready_before == ready_after:
            return
        pod = old if new is None else new
        assert pod is not None
        meta = pod.get("metadata") or {}
        name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if ready_before and before is not None:
            self._set_ready(before, name, False)
        if ready_after and after is not None:
            self._set_ready(after, name, True)

    def _set_ready(self, key: str, pod: str, ready: bool) -> None:
        pods = self._ready.setdefault(key, set())
        if ready:
            pods.add(pod)
        else:
            pods.discard(pod)
            if not pods:
                del self._ready[key]
        row = self._rows.get(key)
        if row is not None and row["ready"] != len(pods):
            updated = {**row, "ready": len(pods)}
            self._rows[key] = updated  # ready is no sort key: the sorted lists stay
            self._changed(key, updated)

    def _changed(self, key: str, row: Row | None) -> None:
        self.version += 1
        for listener in self._listeners:
            listener(key, row)

    # -- queries --------------------------------------------------------------------------------

    def query(self, q: JobQuery) -> dict[str, Any]:
        """The contract's ``/api/jobs`` answer: ``{total, offset, version, counts, items}``."""
        filtered = bool(q.kinds or q.states or q.namespace or q.q)
        if not filtered:
            ordered: SortedList | list[str] = self._sorted[q.sort]
            total = len(ordered)
            counts = self.counts()
            items = self._window(ordered, total, q, keyed=True)
        else:
            view = self._view(q)
            total = len(view.keys)
            counts = view.counts
            items = self._window(view.keys, total, q, keyed=False)
        return {
            "total": total,
            "offset": q.offset,
            "version": self.version,
            "counts": counts,
            "items": items,
        }

    def _window(self, ordered: Iterable[Any], total: int, q: JobQuery, *, keyed: bool) -> list[Row]:
        if q.offset >= total:
            return []
        if q.order == "asc":
            start, stop = q.offset, min(total, q.offset + q.limit)
            picked = ordered[start:stop]  # type: ignore[index]
        else:
            start, stop = max(0, total - q.offset - q.limit), total - q.offset
            picked = list(reversed(ordered[start:stop]))  # type: ignore[index]
        rows = self._rows
        return [rows[k[-1]] if keyed else rows[k] for k in picked]

    def _view(self, q: JobQuery) -> _View:
        """The keys matching ``q``'s filters in ascending ``q.sort`` order, cached per version."""
        cache_key = (q.sort, q.kinds, q.states, q.namespace, q.q)
        view = self._views.get(cache_key)
        if view is not None and view.version == self.version:
            self._views.move_to_end(cache_key)
            return view
        needle = q.q.lower()
        rows = self._rows
        keys: list[str] = []
        counts: dict[str, int] = {}
        for k in islice(self._sorted[q.sort], None):
            key = k[-1]
            row = rows[key]
            if q.kinds and row["kind"] not in q.kinds:
                continue
            if q.namespace and row["namespace"] != q.namespace:
                continue
            if (
                needle
                and needle not in row["namespace"].lower()
                and needle not in row["name"].lower()
            ):
                continue
            state = row["state"]
            counts[state] = counts.get(state, 0) + 1
            if q.states and state not in q.states:
                continue
            keys.append(key)
        view = _View(self.version, keys, counts)
        self._views[cache_key] = view
        if len(self._views) > _CACHED_VIEWS:
            self._views.popitem(last=False)
        return view
