"""Live progress of training jobs, kept from informer events (no polling, no scans).

``JobTracker`` is fed by one job informer per kind and one pod informer; it holds one ``JobRow`` per
job (last condition, pods per phase, timings) and answers "have all the jobs I submitted
finished?" in O(1) per event. Views (``progress_view``) read the rows; listeners hear each change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import Obj, controller_ref
from kubetrain.informers.event_handlers import EventHandler, FunctionHandler
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import PODS, kubeflow
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.reconcilers.trainer.resources import TRAINJOBS

__all__ = [
    "JOB_NAME_LABEL",
    "POD_PHASES",
    "JobKey",
    "JobRow",
    "JobTracker",
    "watch_jobs",
]

JobKey = tuple[str, str, str]
"""``(kind, namespace, name)``: a job is named by its kind too (a TFJob and a PyTorchJob may share
a name)."""

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
#: The label the JobSet controller puts on a JobSet's pods (a TrainJob's JobSet has its name).
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
TRAINJOB_KIND = "TrainJob"
"""Every pod the operator creates carries it; the pod informer selects on it."""
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed")
"""The phases counted per job (``Unknown`` pods are counted as Pending)."""
FINISHED_CONDITIONS = ("Succeeded", "Failed")


@dataclass(slots=True)
class JobRow:
    """What the views show about one job."""

    kind: str
    namespace: str
    name: str
    first_seen: float
    """The tracker clock's ``monotonic()`` when this process first knew of the job (submission or
    first event)."""
    condition: str = ""
    """The job's latest True condition (``Created``, ``Running``, ``Succeeded``, ...); "" before the
    operator wrote one. ``Rejected`` when the API server refused the job; ``Deleted`` when it went
    away before finishing."""
    message: str = ""
    """That condition's message (or the API server's error for ``Rejected``)."""
    pods: dict[str, int] = field(default_factory=lambda: dict.fromkeys(POD_PHASES, 0))
    """Pods of the job per phase; invariant: counts >= 0 and they sum to the job's live pods."""
    finished_at: float | None = None
    """The tracker clock's ``monotonic()`` when the job was first seen finished; None while it
    runs."""
    submitted: bool = False
    """True when this process created the job (timed locally); False for a job found in the
    cluster (left from an earlier run with ``--data``), timed by its server timestamps."""
    server_duration: float | None = None
    """completionTime - creationTimestamp (whole seconds), once the job finished."""

    @property
    def key(self) -> JobKey:
        return (self.kind, self.namespace, self.name)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def succeeded(self) -> bool:
        return self.condition == "Succeeded"

    def elapsed(self, now: float | None = None) -> float:
        """Seconds from first seen to finished, or to ``now`` (default: the current time) while it
        runs; for a job this process did not submit, the server's duration once known."""
        if not self.submitted and self.server_duration is not None:
            return self.server_duration
        if self.finished_at is not None:
            end = self.finished_at
        else:
            end = now if now is not None else time.monotonic()
        return max(0.0, end - self.first_seen)

    def pod_summary(self) -> str:
        return " ".join(f"{phase.lower()} {self.pods[phase]}" for phase in POD_PHASES)


Listener = Callable[[JobRow], None]


class JobTracker:
    """Job rows from informer events, and a wait for the expected jobs to finish.

    Usage: ``expect(key)`` each job before creating it, feed events (``watch_jobs`` wires the
    handlers), ``await wait_finished()``. Methods are synchronous and must run on the event loop.
    """

    def __init__(self, *, clock: Clock = REAL_CLOCK) -> None:
        self._clock = clock
        self.rows: dict[JobKey, JobRow] = {}
        """Every job seen or expected, in insertion order (submission order for expected jobs)."""
        self._expected: set[JobKey] = set()
        self._unfinished_expected = 0
        """Invariant: the number of keys in ``_expected`` whose row is not finished."""
        self._all_finished = asyncio.Event()
        self._all_finished.set()
        self._pods: dict[str, tuple[JobKey, str]] = {}
        """Pod uid -> (its job, the phase it is counted under)."""
        self._listeners: list[Listener] = []

    # -- reading ---------------------------------------------------------------------------------

    @property
    def expected(self) -> list[JobRow]:
        """Rows of the expected jobs, in the order they were expected."""
        return [row for key, row in self.rows.items() if key in self._expected]

    @property
    def expected_keys(self) -> AbstractSet[JobKey]:
        """The expected jobs' keys (a live read-only view)."""
        return self._expected

    def all_succeeded(self) -> bool:
        return all(row.succeeded for row in self.expected)

    async def wait_finished(self) -> None:
        """Return once every expected job has finished (Succeeded, Failed, Rejected, Deleted)."""
        await self._all_finished.wait()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(row)`` after each change of a row (on the event loop; keep it quick)."""
        self._listeners.append(listener)

    # -- expectations ------------------------------------------------------------------------------

    def expect(self, kind: str, namespace: str, name: str, *, submitted: bool = True) -> JobRow:
        """Track this job until it finishes; call before creating it so no event is missed.

        ``submitted``: this process creates it (timed from now); pass False for a job that
        already existed (``AlreadyExists``), or call again with False after the create said so.
        """
        row = self._row(kind, namespace, name)
        if submitted and not row.submitted and row.condition == "":
            row.first_seen = self._clock.monotonic()
        row.submitted = submitted
        key = row.key
        if key not in self._expected:
            self._expected.add(key)
            if not row.finished:
                self._unfinished_expected += 1
                self._all_finished.clear()
        return row

    def rejected(self, kind: str, namespace: str, name: str, message: str) -> None:
        """The API server refused to create the job: it finishes now, unsuccessfully."""
        row = self._row(kind, namespace, name)
        row.condition, row.message = "Rejected", message
        self._finish(row)
        self._changed(row)

    # -- events ------------------------------------------------------------------------------------

    def on_job(self, kind: str, job: Obj) -> None:
        meta = job.get("metadata") or {}
        row = self._row(kind, meta.get("namespace", ""), meta.get("name", ""))
        status = job.get("status") or {}
        if kind == TRAINJOB_KIND:
            condition, message = _trainjob_state(status)
        else:
            condition, message = _latest_condition(status.get("conditions") or [])
        if (condition, message) == (row.condition, row.message):
            return
        row.condition, row.message = condition, message
        if condition in FINISHED_CONDITIONS and not row.finished:
            row.server_duration = _seconds_between(
                meta.get("creationTimestamp"), status.get("completionTime")
            )
            self._finish(row)
        self._changed(row)

    def on_job_deleted(self, kind: str, job: Obj | DeletedFinalStateUnknown) -> None:
        obj = job.obj if isinstance(job, DeletedFinalStateUnknown) else job
        meta = obj.get("metadata") or {}
        row = self.rows.get((kind, meta.get("namespace", ""), meta.get("name", "")))
        if row is None or row.finished:
            return
        row.condition, row.message = "Deleted", "the job was deleted before it finished"
        self._finish(row)
        self._changed(row)

    def on_pod(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        job = _owning_job(meta)
        if job is None or not uid:
            return
        if job[0] == TRAINJOB_KIND and job not in self.rows:
            return  # a JobSet of no TrainJob this tracker knows
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if phase not in POD_PHASES:
            phase = "Pending"
        previous = self._pods.get(uid)
        if previous == (job, phase):
            return
        row = self._row(*job)
        if previous is not None:
            self.rows[previous[0]].pods[previous[1]] -= 1
        row.pods[phase] += 1
        self._pods[uid] = (job, phase)
        self._changed(row)

    def on_pod_deleted(self, pod: Obj | DeletedFinalStateUnknown) -> None:
        obj = pod.obj if isinstance(pod, DeletedFinalStateUnknown) else pod
        previous = self._pods.pop((obj.get("metadata") or {}).get("uid", ""), None)
        if previous is None:
            return
        row = self.rows[previous[0]]
        row.pods[previous[1]] -= 1
        self._changed(row)

    # -- internals ---------------------------------------------------------------------------------

    def _row(self, kind: str, namespace: str, name: str) -> JobRow:
        key = (kind, namespace, name)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = JobRow(kind, namespace, name, first_seen=self._clock.monotonic())
        return row

    def _finish(self, row: JobRow) -> None:
        if row.finished:
            return
        row.finished_at = self._clock.monotonic()
        if row.key in self._expected:
            self._unfinished_expected -= 1
            if self._unfinished_expected == 0:
                self._all_finished.set()

    def _changed(self, row: JobRow) -> None:
        for listener in self._listeners:
            listener(row)


def _latest_condition(conditions: list[Obj]) -> tuple[str, str]:
    """The last True condition (the operator appends in order), else the last one, else ""."""
    for c in reversed(conditions):
        if c.get("status") == "True":
            return str(c.get("type", "")), str(c.get("message", ""))
    if conditions:
        return str(conditions[-1].get("type", "")), str(conditions[-1].get("message", ""))
    return "", ""


def _trainjob_state(status: Obj) -> tuple[str, str]:
    """A TrainJob's state in the rows' vocabulary: its ``status.phase`` (Complete is
    Succeeded), with the message of the condition that finished it, if any."""
    phase = str(status.get("phase") or "")
    condition = "Succeeded" if phase == "Complete" else phase
    for c in status.get("conditions") or []:
        if c.get("type") == phase and c.get("status") == "True":
            return condition, str(c.get("message", ""))
    return condition, ""


def _owning_job(meta: Obj) -> JobKey | None:
    jobset = (meta.get("labels") or {}).get(JOBSET_NAME_LABEL)
    if jobset:  # a TrainJob's pod: its JobSet (and the JobSet's Jobs) share the TrainJob's name
        return (TRAINJOB_KIND, str(meta.get("namespace", "")), str(jobset))
    ref = controller_ref({"metadata": meta})
    if ref is None or not str(ref.get("apiVersion", "")).startswith("kubeflow.org/"):
        return None
    return (str(ref.get("kind", "")), str(meta.get("namespace", "")), str(ref["name"]))


def _seconds_between(start: object, end: object) -> float | None:
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())


class _JobHandler(EventHandler):
    """Job events of one kind (the cached objects may lack ``kind``) to the tracker."""

    def __init__(self, tracker: JobTracker, kind: str) -> None:
        self._tracker = tracker
        self._kind = kind

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._tracker.on_job(self._kind, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._tracker.on_job(self._kind, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._tracker.on_job_deleted(self._kind, obj)


def watch_jobs(tracker: JobTracker, factory: SharedInformerFactory, kinds: Iterable[str]) -> None:
    """Feed ``tracker`` from ``factory``: one informer per job kind, one for the jobs' pods
    (selected by ``training.kubeflow.org/job-name``, cached as metadata + ``status.phase``).
    Call before ``factory.start()``."""
    kinds = list(kinds)
    for kind in kinds:
        keep = ("status.conditions", "status.completionTime")
        resource = kubeflow(kind)
        if kind == TRAINJOB_KIND:
            keep, resource = ("status.conditions", "status.phase"), TRAINJOBS
        informer = factory.informer_for(resource, metadata_only=True, keep=keep)
        informer.add_event_handler(_JobHandler(tracker, kind))
    if TRAINJOB_KIND in kinds:
        _watch_pods(tracker, factory, JOBSET_NAME_LABEL)
    _watch_pods(tracker, factory, JOB_NAME_LABEL)


def _watch_pods(tracker: JobTracker, factory: SharedInformerFactory, label: str) -> None:
    pods = factory.informer_for(
        PODS, label_selector=label, metadata_only=True, keep=("status.phase",)
    )
    pods.add_event_handler(
        FunctionHandler(
            on_add=lambda obj, _initial: tracker.on_pod(obj),
            on_update=lambda _old, new: tracker.on_pod(new),
            on_delete=tracker.on_pod_deleted,
        )
    )
