"""``ExtraObjects``: create-or-update and delete of a job's other objects (MPI ConfigMap and RBAC,
PyTorch HPA, the gang scheduler's PodGroup), writing only when the object differs from what the
decision wants.

Cached kinds (``resources.CACHED_EXTRAS``) are compared with the cache; the others with the body
last applied (``JobMemory.applied``), so a steady job costs no request. The comparison ignores
fields the server adds (defaults): an object differs only where the desired body says otherwise
(labels, annotations, and everything outside metadata but status). An update carries the current
``status`` along, so a resource without a status subresource keeps what its controller wrote
(a PodGroup's phase). Deleting a kind of ``resources.DELETION_EVENTS`` (PodGroup) records
``SuccessfulDelete<Kind>``/``FailedDelete<Kind>`` on the job, as the reference does.

Create and update, not server-side apply: an apply is a request too, so this comparison would
still be needed to write nothing for a steady job, and POST/PUT keep the requests and the RBAC
verbs (create, update) of the reference operator.
"""

from __future__ import annotations

import copy
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.decision import NORMAL, WARNING
from kubetrain.reconcilers.common.naming import JOB_NAME_LABEL, OPERATOR_NAME_LABEL

from .memory import JobMemory
from .outcome import Outcome
from .protocols import JobWriter
from .recording import JobEvents
from .resources import DELETION_EVENTS, EXTRA_RESOURCES

__all__ = ["ExtraObjects", "contains", "same_content"]


def contains(actual: Any, desired: Any) -> bool:
    """True when every field of ``desired`` is in ``actual`` with the same value."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(k in actual and contains(actual[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        return all(contains(a, d) for a, d in zip(actual, desired, strict=True))
    return bool(actual == desired)


def same_content(actual: Obj, desired: Obj) -> bool:
    """``actual`` already has ``desired``'s labels, annotations and content (the rest of
    metadata, and status, aside)."""
    actual_meta = actual.get("metadata") or {}
    desired_meta = desired.get("metadata") or {}
    for field in ("labels", "annotations"):
        if not contains(actual_meta.get(field) or {}, desired_meta.get(field) or {}):
            return False
    return all(
        contains(actual.get(k), v)
        for k, v in desired.items()
        if k not in ("metadata", "apiVersion", "kind", "status")
    )


class ExtraObjects:
    """The extra-object writes of one kind's controller; ``listers`` by resource plural."""

    def __init__(
        self,
        kind: JobKind,
        *,
        client: JobWriter,
        listers: dict[str, Lister],
        field_manager: str,
        events: JobEvents | None = None,
    ) -> None:
        """``events``: where the deletions of ``DELETION_EVENTS`` kinds are recorded."""
        self._kind = kind
        self._client = client
        self._listers = listers
        self._field_manager = field_manager
        self._events = events

    async def delete(
        self, job: Obj, memory: JobMemory, api_version: str, kind: str, name: str, out: Outcome
    ) -> None:
        """Delete ``kind``/``name`` in the job's namespace unless the cache shows it gone."""
        ref = EXTRA_RESOURCES.get((api_version, kind))
        if ref is None:
            out.failures.append(f"delete {api_version} {kind} {name}: unknown resource")
            return
        ns = job["metadata"].get("namespace")
        lister = self._listers.get(ref.plural)
        if lister is not None and lister.get(ns, name) is None:
            return  # not there: nothing to write
        memory.applied.pop((ref.plural, name), None)
        recorded = self._events if kind in DELETION_EVENTS else None
        try:
            await self._client.delete(ref, ns, name)
        except ApiStatusError as e:
            if not e.is_not_found:
                out.failures.append(f"delete {kind} {name}: {e}")
                if recorded is not None:
                    recorded.emit(job, WARNING, f"FailedDelete{kind}", f"Error deleting: {e}")
            return
        if recorded is not None:
            recorded.emit(job, NORMAL, f"SuccessfulDelete{kind}", f"Deleted {kind}: {name}")

    async def apply(self, job: Obj, memory: JobMemory, body: Obj, out: Outcome) -> None:
        """Create-or-update ``body`` (labelled as the job's); no write when already so."""
        ref = EXTRA_RESOURCES.get((body.get("apiVersion", ""), body.get("kind", "")))
        if ref is None:
            out.failures.append(
                f"apply {body.get('apiVersion')} {body.get('kind')}: unknown resource"
            )
            return
        meta = body["metadata"]
        labels = meta.setdefault("labels", {})
        labels.setdefault(OPERATOR_NAME_LABEL, self._kind.controller_name)
        labels.setdefault(JOB_NAME_LABEL, job["metadata"]["name"])
        ns, name = meta["namespace"], meta["name"]
        memo = (ref.plural, name)
        lister = self._listers.get(ref.plural)
        cached = lister.get(ns, name) if lister is not None else None
        if cached is not None and same_content(cached, body):
            memory.applied[memo] = body
            return
        if cached is None and memory.applied.get(memo) == body:
            return
        try:
            if cached is None:
                try:
                    await self._client.create(ref, body, field_manager=self._field_manager)
                except ApiStatusError as e:
                    if not e.is_already_exists:
                        raise
                    cached = await self._client.get(ref, ns, name)
                    if not same_content(cached, body):
                        await self._update(ref, cached, body)
            else:
                await self._update(ref, cached, body)
        except ApiStatusError as e:
            out.failures.append(f"apply {ref.kind} {name}: {e}")
            return
        memory.applied[memo] = body

    async def _update(self, ref: ResourceRef, current: Obj, body: Obj) -> None:
        desired = copy.deepcopy(body)
        desired["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        if "status" in current and "status" not in desired:
            desired["status"] = current["status"]
        await self._client.update(ref, desired, field_manager=self._field_manager)
