"""What one sync of a Job works with: the controller's collaborators (``Deps``) and the state of
this sync (``SyncContext``, kube's ``syncJobCtx``).

``JobApi`` is the controller's only way to write: pods created, deleted and patched (the
tracking finalizer), the Job's status. The controller implements it over the ``ApiClient``;
tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubetrain.base.clock import Clock

from .backoff import BackoffRecord, BackoffStore
from .expectations import FinalizerExpectations, PodExpectations
from .intervals import Intervals

__all__ = ["Deps", "EventSink", "JobApi", "SyncContext"]

Obj = dict[str, Any]


class JobApi(Protocol):
    async def create_pod(self, namespace: str, pod: Obj) -> Obj: ...

    async def delete_pod(self, namespace: str, name: str) -> bool:
        """DELETE; False when the pod was already gone (not an error)."""

    async def remove_tracking_finalizer(self, namespace: str, name: str) -> None:
        """Strategic-merge ``$deleteFromPrimitiveList/finalizers``; gone is not an error."""

    async def update_job_status(self, job: Obj) -> Obj: ...


class EventSink(Protocol):
    def __call__(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None: ...


@dataclass(kw_only=True)
class Deps:
    """Shared by every sync of one controller."""

    api: JobApi
    pods_of: Callable[[Mapping[str, Any]], list[Obj]]
    """The pods whose controller owner reference is the Job (the cache, by owner UID)."""
    event: EventSink
    clock: Clock
    expectations: PodExpectations
    finalizers: FinalizerExpectations
    backoff: BackoffStore
    enqueue_after: Callable[[str, float], None]
    batch_seconds: float = 1.0
    """kube's ``syncJobBatchPeriod``: the least delay of a re-sync the controller schedules."""


@dataclass(kw_only=True)
class SyncContext:
    key: str
    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: frozenset[str]
    uncounted_failed: frozenset[str]
    expected_rm_finalizers: frozenset[str]
    succeeded: int = 0
    failed: int = 0
    finished_condition: Obj | None = None
    prev_succeeded_indexes: Intervals = field(default_factory=list)
    succeeded_indexes: Intervals = field(default_factory=list)
    failed_indexes: Intervals | None = None
    new_backoff: BackoffRecord | None = None
    delayed_deletion: dict[int, Obj] = field(default_factory=dict)
    """backoffLimitPerIndex: per index, the failed pod kept until its replacement exists."""

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.job.get("spec") or {}

    @property
    def status(self) -> Obj:
        status: Obj = self.job.setdefault("status", {})
        return status

    @property
    def indexed(self) -> bool:
        return self.spec.get("completionMode") == "Indexed"

    @property
    def completions(self) -> int:
        return int(self.spec.get("completions") or 0)

    @property
    def per_index(self) -> bool:
        return self.indexed and self.spec.get("backoffLimitPerIndex") is not None
