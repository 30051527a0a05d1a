"""Pods of a job: building one from its replica template, and planning per replica type (2.7).

``build_pod`` returns the body to POST; it deep-copies the template (the cached job stays
untouched). ``plan_pods`` compares the wanted indices with the pods that exist and says what to
create, delete (out of range) and restart (Failed and retryable), and which pods failed for good.

Restart rules (2.2), with kubetrain's decision on quirk 7 (the ``0xbeef`` sentinel):
- ``OnFailure``/``Always``: a Failed pod is deleted and re-created (whatever the cause);
- ``ExitCode``: the exit code of the default container decides: >= 128 (signals: OOM kill,
  preemption, SIGTERM) is retryable, 1-127 is permanent. When the default container has no
  terminated state, kubetrain does **not** silently assume "retryable": it looks at the other
  containers (init containers first) and uses the first non-zero exit code it finds (an init
  container that exited 1 is a permanent failure); with no exit code at all, the failure is
  retryable only when the pod carries a ``status.reason`` set by the node (``Evicted``,
  ``Preempting``, ``NodeLost``, ``Shutdown``, ...), i.e. the infrastructure, not the program,
  failed it; otherwise it is permanent and the job fails with a message that says so. Every
  re-creation counts against ``backoffLimit`` (see ``runpolicy``), so retries are bounded;
- ``Never``: nothing here; the kind's status rules fail the job.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.decision import WARNING, Event
from kubetrain.reconcilers.common.jobs import name_of, namespace_of, replica_specs
from kubetrain.reconcilers.common.kind_adapter import DomainOptions, KindAdapter
from kubetrain.reconcilers.common.naming import (
    REPLICA_INDEX_LABEL,
    owner_reference,
    replica_labels,
)
from kubetrain.reconcilers.gang.decorate import decorate_pod_for_gang

RESTART_ALWAYS = "Always"
RESTART_ON_FAILURE = "OnFailure"
RESTART_NEVER = "Never"
RESTART_EXIT_CODE = "ExitCode"


def pod_restart_policy(replica_policy: str) -> str:
    """The pod's ``spec.restartPolicy`` for a replica restartPolicy (``ExitCode`` -> ``Never``)."""
    return RESTART_NEVER if replica_policy == RESTART_EXIT_CODE else replica_policy


def build_pod(
    adapter: KindAdapter, job: Obj, rtype: str, index: int, *, options: DomainOptions
) -> tuple[Obj, list[Event]]:
    """The pod to create for ``(job, rtype, index)`` and the events building it emitted.

    ``job`` must be defaulted. Template labels, annotations and finalizers are kept; the
    operator's labels override template labels. The kind's decoration (env, init containers,
    volumes) is applied, then the gang scheduler's (``options.gang``: schedulerName, group
    annotations or label), then the restart policy. Raises SpecError from the decoration.
    """
    kind = adapter.kind
    rspec = replica_specs(job, kind)[rtype]
    template: Obj = copy.deepcopy(rspec.get("template") or {})
    tmeta: Obj = template.get("metadata") or {}
    job_name = name_of(job)
    labels = dict(tmeta.get("labels") or {})
    labels.update(
        replica_labels(
            kind, job_name, rtype, index, master_role=adapter.is_master_role(job, rtype, index)
        )
    )
    meta: Obj = {
        "name": adapter.pod_name(job_name, rtype, index),
        "namespace": namespace_of(job),
        "labels": labels,
    }
    if tmeta.get("annotations"):
        meta["annotations"] = tmeta["annotations"]
    if tmeta.get("finalizers"):
        meta["finalizers"] = tmeta["finalizers"]
    meta["ownerReferences"] = [owner_reference(kind, job)]
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec") or {},
    }
    adapter.decorate_pod(job, rtype, index, pod, options)
    events: list[Event] = []
    if options.gang is not None:
        events += decorate_pod_for_gang(options.gang, pod, job_name=job_name, rtype=rtype)
    if pod["spec"].get("restartPolicy"):
        events.append(
            Event(
                WARNING,
                "SetPodTemplateRestartPolicy",
                "Restart policy in pod template will be overwritten by restart policy in replica "
                "spec",
            )
        )
    pod["spec"]["restartPolicy"] = pod_restart_policy(rspec.get("restartPolicy", RESTART_NEVER))
    return pod, events


def replica_index(pod: Obj) -> int | None:
    """The pod's ``replica-index`` label as an int; None when absent or not a number."""
    raw = pod.get("metadata", {}).get("labels", {}).get(REPLICA_INDEX_LABEL)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def default_container_exit_code(pod: Obj, container: str) -> int | None:
    """Exit code of ``container`` when it is terminated, else None."""
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            term = (cs.get("state") or {}).get("terminated")
            if term is not None:
                return int(term.get("exitCode", 0))
    return None


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    """Whether a Failed pod may be re-created, and why (for messages)."""

    retryable: bool
    exit_code: int | None
    cause: str


def failure_verdict(pod: Obj, *, restart_policy: str, default_container: str) -> FailureVerdict:
    """Decide a Failed pod's fate under ``restart_policy`` (see the module docstring)."""
    code = default_container_exit_code(pod, default_container)
    if restart_policy in (RESTART_ON_FAILURE, RESTART_ALWAYS):
        return FailureVerdict(True, code, f"restartPolicy {restart_policy}")
    if restart_policy != RESTART_EXIT_CODE:
        return FailureVerdict(False, code, f"restartPolicy {restart_policy}")
    if code is not None:
        return FailureVerdict(code >= 128, code, f"container {default_container} exit code {code}")
    status = pod.get("status", {})
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            term = (cs.get("state") or {}).get("terminated")
            if term is not None and int(term.get("exitCode", 0)) != 0:
                other = int(term["exitCode"])
                return FailureVerdict(
                    other >= 128, other, f"container {cs.get('name')} exit code {other}"
                )
    reason = status.get("reason")
    if reason:
        return FailureVerdict(True, None, f"pod {reason} by the node")
    return FailureVerdict(False, None, "no exit code and no node-set reason")


@dataclass(slots=True)
class PodPlan:
    """What to do for one replica type. Indices to create are in ascending order."""

    create: list[int] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    """Pods at an index >= replicas (scale-down)."""
    restart: list[Obj] = field(default_factory=list)
    """Failed, retryable pods: delete them; they are re-created under the same name later."""
    failed: list[tuple[Obj, FailureVerdict]] = field(default_factory=list)
    """Failed pods with ExitCode policy and a permanent failure: the job fails."""
    exited: list[tuple[str, int]] = field(default_factory=list)
    """(pod name, exit code) of pods whose default container terminated (ExitedWithCode)."""
    duplicates: list[int] = field(default_factory=list)
    """Indices with more than one pod (a stale cache or a foreign pod); logged, not acted on."""


def plan_pods(adapter: KindAdapter, job: Obj, rtype: str, pods: list[Obj]) -> PodPlan:
    """Plan the pods of ``rtype`` given its existing ``pods`` (already filtered to this job and
    type). Pods being deleted (deletionTimestamp) occupy their index but are never acted on.
    """
    kind = adapter.kind
    rspec = replica_specs(job, kind)[rtype]
    replicas = int(rspec.get("replicas") or 0)
    policy = rspec.get("restartPolicy", RESTART_NEVER)
    slots: dict[int, list[Obj]] = {}
    for pod in pods:
        idx = replica_index(pod)
        if idx is None or idx < 0:
            continue
        slots.setdefault(idx, []).append(pod)
    plan = PodPlan()
    for idx in range(max(replicas, max(slots, default=-1) + 1)):
        slot = slots.get(idx, [])
        if not slot:
            if idx < replicas:
                plan.create.append(idx)
            continue
        if len(slot) > 1:
            plan.duplicates.append(idx)
            continue
        pod = slot[0]
        name = pod.get("metadata", {}).get("name", "")
        terminating = bool(pod.get("metadata", {}).get("deletionTimestamp"))
        if idx >= replicas:
            if not terminating:
                plan.delete.append(name)
            continue
        code = default_container_exit_code(pod, kind.default_container)
        if code is not None:
            plan.exited.append((name, code))
        if terminating or pod.get("status", {}).get("phase") != "Failed":
            continue
        if not adapter.restarts_failed_pods or policy == RESTART_NEVER:
            continue
        verdict = failure_verdict(
            pod, restart_policy=policy, default_container=kind.default_container
        )
        if verdict.retryable:
            plan.restart.append(pod)
        else:
            plan.failed.append((pod, verdict))
    return plan
