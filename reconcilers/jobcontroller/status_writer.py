"""``StatusWriter``: a job's status through the status subresource, written only when it changed,
with replica-count-only changes batched.

Batching: a change that only moves ``replicaStatuses`` within ``status_batch_seconds`` of the job's
last status write waits for the end of that window (pods that start one after another cost one
write); conditions and times are never delayed. A finished job is cached compacted, so its status
is merge-patched (guarded by the cached resourceVersion), never PUT.
"""

from __future__ import annotations

from kubetrain.base.clock import Clock
from kubetrain.base.objects import Obj
from kubetrain.engine.request_priority import request_priority
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.compact import merge_patch_of
from kubetrain.reconcilers.common.priorities import STATUS_REQUEST_PRIORITY

from .memory import JobMemory
from .protocols import JobWriter

__all__ = ["StatusWriter"]


class StatusWriter:
    """Status writes of one kind's jobs (``job_ref``)."""

    def __init__(
        self,
        job_ref: ResourceRef,
        *,
        client: JobWriter,
        clock: Clock,
        batch_seconds: float,
        field_manager: str,
    ) -> None:
        self._job_ref = job_ref
        self._client = client
        self._clock = clock
        self._batch_seconds = batch_seconds
        self._field_manager = field_manager

    def batch_wait(self, memory: JobMemory, base: Obj, status: Obj) -> float:
        """Seconds to hold the write of ``status`` back; 0: write now."""
        window = self._batch_seconds
        last = memory.status_written_at
        if window <= 0 or last is None:
            return 0.0
        remaining = last + window - self._clock.monotonic()
        if remaining <= 0:
            return 0.0
        old: Obj = base.get("status") or {}
        if any(
            status.get(k) != old.get(k)
            for k in status.keys() | old.keys()
            if k != "replicaStatuses"
        ):
            return 0.0  # a condition or a time moved: never delayed
        return remaining

    async def write(self, base: Obj, memory: JobMemory, status: Obj) -> bool:
        """Write ``status``; True when written (or nothing to write), False when the job is gone
        or, for a finished job, changed meanwhile (its watch event brings it back). The request
        queues at ``STATUS_REQUEST_PRIORITY`` for the client's in-flight limit."""
        with request_priority(STATUS_REQUEST_PRIORITY):
            return await self._write(base, memory, status)

    async def _write(self, base: Obj, memory: JobMemory, status: Obj) -> bool:
        old_status: Obj = base.get("status") or {}
        if cond.is_finished(old_status):
            return await self._patch_finished(base, memory, old_status, status)
        uid = memory.uid

        def mutate(obj: Obj) -> Obj | None:
            if obj.get("metadata", {}).get("uid") != uid:
                return None  # re-created under the same name: not ours to write
            obj["status"] = status
            return obj

        meta = base["metadata"]
        try:
            stored = await self._client.update_status_with_retry(
                self._job_ref, meta.get("namespace"), meta["name"], mutate, current=base
            )
        except ApiStatusError as e:
            if e.is_not_found:
                return False
            raise
        if stored is not None:
            memory.note_written(stored)
            memory.status_written_at = self._clock.monotonic()
        return True

    async def _patch_finished(
        self, base: Obj, memory: JobMemory, old_status: Obj, status: Obj
    ) -> bool:
        changes = merge_patch_of(old_status, status)
        if not changes:
            return True
        if "conditions" in changes:
            # The cache holds only the terminal conditions: replacing the list would drop the
            # others. The finished branch never changes them; refuse rather than corrupt.
            raise RuntimeError(
                f"{self._job_ref.kind} {base['metadata'].get('name')}: a finished job's "
                "conditions cannot be written from its compacted cache"
            )
        meta = base["metadata"]
        patch: Obj = {"status": changes}
        if meta.get("resourceVersion"):
            patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        try:
            stored = await self._client.patch(
                self._job_ref,
                meta.get("namespace"),
                meta["name"],
                patch,
                subresource="status",
                field_manager=self._field_manager,
            )
        except ApiStatusError as e:
            if e.is_not_found or e.is_conflict:
                return False
            raise
        memory.note_written(stored)
        return True
