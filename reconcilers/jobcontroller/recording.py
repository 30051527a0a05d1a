"""``JobEvents``: Kubernetes Events on one kind's jobs, from the decision's plain event types."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.engine.events import EventType
from kubetrain.informers.resource import ResourceRef
from kubetrain.reconcilers.common.decision import WARNING

from .protocols import EventSink

__all__ = ["JobEvents"]


class JobEvents:
    """Records events on jobs of ``job_ref``'s kind through ``sink`` (never blocks)."""

    __slots__ = ("_job_ref", "_sink")

    def __init__(self, sink: EventSink, job_ref: ResourceRef) -> None:
        self._sink = sink
        self._job_ref = job_ref

    def emit(self, job: Obj, etype: str, reason: str, message: str) -> None:
        """``etype``: ``Normal`` or ``Warning`` (anything but Warning records Normal)."""
        kind: EventType = "Warning" if etype == WARNING else "Normal"
        self._sink.event(job, kind, reason, message, resource=self._job_ref)
