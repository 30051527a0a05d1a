"""Kubernetes events as the dashboard keeps them: trimmed, filed by the object they are about.

The events informer (core/v1) caches every event of the watched namespaces; the detail of a job
shows its own and its pods' events, so each is filed under ``KIND/NAMESPACE/NAME`` of its
``involvedObject`` (``EVENT_INDEX``) and a job's events are a few index lookups.
"""

from __future__ import annotations

from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.jobs import unix_time

__all__ = ["EVENT_INDEX", "event_index", "event_subject", "event_view", "trim_event"]

EVENT_INDEX = "dashboard:involved"


def event_subject(event: Obj) -> str | None:
    """``KIND/NAMESPACE/NAME`` of the object ``event`` is about, or None."""
    involved = event.get("involvedObject") or {}
    kind, name = involved.get("kind"), involved.get("name")
    if not kind or not name:
        return None
    namespace = involved.get("namespace") or (event.get("metadata") or {}).get("namespace") or ""
    return f"{kind}/{namespace}/{name}"


def event_index(event: Obj) -> list[str]:
    """``EVENT_INDEX``'s index function."""
    subject = event_subject(event)
    return [subject] if subject else []


_KEEP = (
    "involvedObject",
    "type",
    "reason",
    "message",
    "count",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "source",
    "reportingComponent",
)
_KEEP_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def trim_event(event: Obj) -> Obj:
    """The events informer's transform (idempotent)."""
    meta = event.get("metadata") or {}
    out: dict[str, Any] = {k: event[k] for k in _KEEP if k in event}
    out["apiVersion"] = event.get("apiVersion", "v1")
    out["kind"] = event.get("kind", "Event")
    out["metadata"] = {k: meta[k] for k in _KEEP_META if k in meta}
    return out


def event_view(event: Obj) -> dict[str, Any]:
    """An event as the detail shows it: ``{type, reason, message, count, first, last,
    object: {kind, name}, source}`` (times in Unix seconds)."""
    involved = event.get("involvedObject") or {}
    meta = event.get("metadata") or {}
    last = (
        unix_time(event.get("lastTimestamp"))
        or unix_time(event.get("eventTime"))
        or unix_time(meta.get("creationTimestamp"))
    )
    return {
        "type": event.get("type") or "Normal",
        "reason": event.get("reason") or "",
        "message": event.get("message") or "",
        "count": int(event.get("count") or 1),
        "first": unix_time(event.get("firstTimestamp")) or last,
        "last": last,
        "object": {"kind": involved.get("kind", ""), "name": involved.get("name", "")},
        "source": (event.get("source") or {}).get("component")
        or event.get("reportingComponent")
        or "",
    }
