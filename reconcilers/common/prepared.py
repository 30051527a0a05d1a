"""``prepared_job``: a job defaulted and validated once per resourceVersion, not once per reconcile.

Why: a job is reconciled many times at the same resourceVersion (each of its pods' events wakes
it), and defaulting plus validation were redone every time (about 20 us a reconcile, the part of
``compute_status`` that depends on the job alone). A resourceVersion names one content of the
object, spec and status together, so what is computed from it can be reused until it changes.

The cache is bounded (``CAPACITY`` entries, least recently used out first) and keyed by
(kind, uid, resourceVersion); a job without uid or resourceVersion (a test's hand-made object) is
prepared afresh each time. Callers must not mutate what they get: it is shared by later calls,
as cached objects are (``base.objects.Obj``). One event loop: no locking.
"""

from __future__ import annotations

from collections import OrderedDict

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.api.validation import FieldError, validate

__all__ = ["CAPACITY", "PreparedJob", "prepared_job"]

CAPACITY = 4096
"""Entries kept: more than the jobs a burst keeps in flight. About 4 KB each for a PyTorchJob of
the benchmarks' shape (measured with tracemalloc), so up to about 16 MB once full: a churning
operator's memory grows by that much in its first minutes (``kubetrain bench soak``), then stays."""

PreparedJob = tuple[Obj, list[FieldError]]
"""The defaulted job and its validation errors (empty when valid or not validated)."""

_cache: OrderedDict[tuple[str, str, str], PreparedJob] = OrderedDict()


def prepared_job(kind: JobKind, job: Obj, *, validated: bool) -> PreparedJob:
    """``job`` defaulted, and its errors when ``validated`` (else none); reused per
    resourceVersion. ``validated`` is part of the key's meaning: it follows from the status
    (not started yet), which the resourceVersion fixes, so one key never needs both."""
    meta = job.get("metadata") or {}
    uid = meta.get("uid")
    rv = meta.get("resourceVersion")
    key = (kind.kind, str(uid), str(rv))
    if uid and rv:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    defaulted = default_job(kind, job)
    prepared: PreparedJob = (defaulted, validate(kind, defaulted) if validated else [])
    if uid and rv:
        _cache[key] = prepared
        if len(_cache) > CAPACITY:
            _cache.popitem(last=False)
    return prepared


def clear() -> None:
    """Forget everything (tests)."""
    _cache.clear()
