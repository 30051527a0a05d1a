"""``prepared_job``: a job defaulted and validated once per spec generation, not once per reconcile.

Why: a job is reconciled many times with the same spec (each of its pods' events wakes it, and
so does the echo of each of its own status writes), and defaulting plus validation were redone
every time (about 20 us a reconcile, the part of ``compute_status`` that depends on the spec
alone). Defaulting changes nothing but ``spec``, and validation reads ``spec`` and the immutable
``metadata.name``; ``metadata.generation`` changes whenever the spec does (the API server's
contract for custom resources, whose status and metadata writes leave it alone). So the defaulted
spec and the errors are kept per (kind, uid, generation) and put back into each reconcile's job,
with that job's own metadata and status. A job without a generation falls back to its
resourceVersion (a new one on any change); one without uid or either version (a test's hand-made
object) is prepared afresh each time.

The cache is bounded (``CAPACITY`` entries, least recently used out first). Callers must not
mutate what they get: its spec is shared by later calls, as cached objects are
(``base.objects.Obj``). One event loop: no locking.
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

_cache: OrderedDict[tuple[str, str, str, bool], tuple[object, list[FieldError]]] = OrderedDict()
"""(kind, uid, generation or ``rv:<resourceVersion>``, validated) -> (defaulted spec, errors)."""


def prepared_job(kind: JobKind, job: Obj, *, validated: bool) -> PreparedJob:
    """``job`` defaulted, and its errors when ``validated`` (else none); the work is reused per
    spec generation. ``validated`` follows from the status (not started yet) and is part of the
    key."""
    meta = job.get("metadata") or {}
    uid = meta.get("uid")
    generation = meta.get("generation")
    version = str(generation) if generation is not None else _rv_version(meta)
    if not uid or not version:
        defaulted = default_job(kind, job)
        return defaulted, validate(kind, defaulted) if validated else []
    key = (kind.kind, str(uid), version, validated)
    found = _cache.get(key)
    if found is not None:
        _cache.move_to_end(key)
        spec, errors = found
        return {**job, "spec": spec}, errors
    defaulted = default_job(kind, job)
    errors = validate(kind, defaulted) if validated else []
    _cache[key] = (defaulted["spec"], errors)  # default_job always sets one
    if len(_cache) > CAPACITY:
        _cache.popitem(last=False)
    return defaulted, errors


def _rv_version(meta: Obj) -> str:
    rv = meta.get("resourceVersion")
    return f"rv:{rv}" if rv else ""


def clear() -> None:
    """Forget everything (tests)."""
    _cache.clear()
