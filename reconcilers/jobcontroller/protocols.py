"""What a job reconciler writes through and records to, as small Protocols.

``engine.client.ApiClient`` and ``engine.events.EventRecorder`` satisfy them; tests pass fakes that
implement only these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from kubetrain.base.objects import Obj
from kubetrain.engine.events import EventType
from kubetrain.informers.resource import ResourceRef

__all__ = ["EventSink", "JobWriter"]


class JobWriter(Protocol):
    """The API writes of a job reconcile (and the one read after a create conflict)."""

    async def get(self, ref: ResourceRef, namespace: str | None, name: str) -> Obj: ...

    async def create(
        self,
        ref: ResourceRef,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        read_answer: bool = True,
    ) -> Obj: ...

    async def update(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj: ...

    async def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> Obj: ...

    async def delete(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        uid: str | None = None,
    ) -> Obj: ...

    async def update_status_with_retry(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        current: Mapping[str, Any] | None = None,
    ) -> Obj | None: ...


class EventSink(Protocol):
    """Where Kubernetes Events about a job go (an ``EventRecorder``: never blocks)."""

    def event(
        self,
        obj: Mapping[str, Any],
        type: EventType,
        reason: str,
        message: str,
        *,
        resource: ResourceRef | None = None,
    ) -> None: ...
