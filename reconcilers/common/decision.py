"""What one reconcile decided, as data: the contract between the pure domain and the controller.

``compute_status`` (``common/status.py``) returns a ``StatusDecision``; the controller glue applies
it (writes, events, metrics, requeue). ``StatusWork`` is the mutable scratch state the state
machine and the kind adapters fill during one computation; nothing outside one call keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.jobs import format_time

NORMAL = "Normal"
WARNING = "Warning"


class SpecError(ValueError):
    """The job's spec cannot be turned into pods (e.g. a required port is missing).

    The message names the field and the fix; the controller reports it as a Warning event and
    retries with backoff (the user may fix the job).
    """


@dataclass(frozen=True, slots=True)
class Event:
    """An event to record on the job: ``type`` is Normal or Warning."""

    type: str
    reason: str
    message: str


@dataclass(slots=True)
class Counters:
    """Increments for the ``training_operator_jobs_*_total`` counters (labels: the job's
    namespace and the kind's framework). Each is counted once per transition, not per reconcile.
    """

    created: int = 0
    successful: int = 0
    failed: int = 0
    restarted: int = 0
    deleted: int = 0


@dataclass(slots=True)
class StatusDecision:
    """Everything one reconcile wants done. Empty lists mean nothing to do.

    Apply order (the controller's duty):
    1. ``job_annotations`` (merge-patch on the job's metadata), before deleting restart pods, so
       an operator crash never loses a counted restart;
    2. deletions (``delete_pods``, ``delete_services``, ``delete_objects``), with deletion
       expectations raised first;
    3. creations (``create_pods``, ``create_services``, ``apply_objects``), with creation
       expectations raised first; ``apply_objects`` are create-or-update (MPI ConfigMap, RBAC,
       PyTorch HPA);
    4. ``status`` through the status subresource, only when ``status_changed``;
    5. ``delete_job`` (TTL): delete the job with background propagation;
    6. ``events`` and ``counters``; then requeue after ``requeue_after`` seconds if set, at
       ``priority`` when set.
    ``error`` set: record it (the events carry it) and retry with backoff.
    ``invalid`` set: the job failed validation; nothing but its status is written (when
    ``status_changed``: the Failed condition naming the field, and Created if it had none), the
    events and counters go with that write, and the job is never retried.
    """

    status: Obj
    status_changed: bool
    events: list[Event] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    create_pods: list[Obj] = field(default_factory=list)
    delete_pods: list[str] = field(default_factory=list)
    create_services: list[Obj] = field(default_factory=list)
    delete_services: list[str] = field(default_factory=list)
    apply_objects: list[Obj] = field(default_factory=list)
    delete_objects: list[tuple[str, str, str]] = field(default_factory=list)
    """(apiVersion, kind, name) in the job's namespace, e.g. the HPA of a suspended job."""
    job_annotations: dict[str, str] = field(default_factory=dict)
    delete_job: bool = False
    ttl_deadline: datetime | None = None
    """A finished job with a TTL: when it falls (or fell) due (``common/ttl.py``)."""
    requeue_after: float | None = None
    priority: int | None = None
    """Work-queue priority of the requeue (``common/priorities.py``); None: the default."""
    error: str | None = None
    invalid: str | None = None
    """The validation failure (the Failed condition's message) of a job that cannot run."""
    total_replicas: int = 0
    """Pods the (defaulted) job runs when all are created; 0 for a finished or invalid job."""


@dataclass(slots=True)
class StatusWork:
    """The status being computed for one job during one reconcile, and what it emitted.

    ``status`` is a private copy; helpers below apply the condition algorithm and count each
    transition once. Kind adapters call ``running``/``succeed``/``fail``/``restart``.
    """

    kind: JobKind
    job: Obj
    status: Obj
    now: datetime
    events: list[Event] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    restart_counted: bool = False  # a restart was counted in this reconcile
    # Some replica has no pod and one is being created in this reconcile: ``succeed`` waits
    # until it exists. A crash between a job's creates can leave replicas that were never
    # created while the others already succeeded; a job is never reported Succeeded without
    # them. (Failure is not held back: a failed replica fails the job whatever is missing.)
    replicas_missing: bool = False

    @property
    def name(self) -> str:
        n: str = self.job.get("metadata", {}).get("name", "")
        return n

    @property
    def namespace(self) -> str:
        n: str = self.job.get("metadata", {}).get("namespace", "")
        return n

    def replica_status(self, rtype: str) -> Obj:
        rs: Obj = self.status.setdefault("replicaStatuses", {}).setdefault(rtype, {})
        return rs

    def set_condition(
        self, ctype: str, status: str, message: str, *, suffix: str, reason: str | None = None
    ) -> bool:
        """Set a condition (reason ``<Kind><suffix>`` unless ``reason`` given); True if changed."""
        old = self.status.get("conditions") or []
        new = cond.set_condition(
            old, ctype, status, reason or cond.reason(self.kind.kind, suffix), message, now=self.now
        )
        if new is old:
            return False
        self.status["conditions"] = new
        return True

    def event(self, etype: str, reason: str, message: str) -> None:
        self.events.append(Event(etype, reason, message))

    def running(self, message: str) -> None:
        self.set_condition(cond.RUNNING, cond.TRUE, message, suffix=cond.REASON_RUNNING)

    def succeed(self, message: str) -> None:
        """Succeeded=True, completionTime, a Normal ``<Kind>Succeeded`` event, +1 successful —
        the event and count only on the transition. Not while ``replicas_missing``."""
        if cond.is_finished(self.status) or self.replicas_missing:
            return
        self.status.setdefault("completionTime", format_time(self.now))
        if self.set_condition(cond.SUCCEEDED, cond.TRUE, message, suffix=cond.REASON_SUCCEEDED):
            self.event(NORMAL, cond.reason(self.kind.kind, cond.REASON_SUCCEEDED), message)
            self.counters.successful += 1

    def fail(self, message: str, *, reason: str | None = None) -> None:
        """Failed=True, completionTime, a **Warning** ``<Kind>Failed`` event (fix of quirk 9),
        +1 failed (every failure path counts, not only UpdateJobStatus's) — once."""
        if cond.is_finished(self.status):
            return
        self.status.setdefault("completionTime", format_time(self.now))
        full = reason or cond.reason(self.kind.kind, cond.REASON_FAILED)
        if self.set_condition(cond.FAILED, cond.TRUE, message, suffix="", reason=full):
            self.event(WARNING, full, message)
            self.counters.failed += 1

    def restart(self, message: str, *, always: bool = False) -> None:
        """Restarting=True; a Warning ``<Kind>Restarting`` event and +1 restarted when ``always``
        (one pod re-created = one restart), or when the condition changed and no restart was
        counted yet in this reconcile (the kind's rules re-assert what the pod loop counted)."""
        changed = self.set_condition(
            cond.RESTARTING, cond.TRUE, message, suffix=cond.REASON_RESTARTING
        )
        if always or (changed and not self.restart_counted):
            self.event(WARNING, cond.reason(self.kind.kind, cond.REASON_RESTARTING), message)
            self.counters.restarted += 1
            self.restart_counted = True
