"""The job-status state machine (reference 2.6) as one pure function: ``compute_status``.

Given the cached job, the pods and services it owns and the time, it returns a
``StatusDecision``: the new status and everything the controller must do. It reproduces the
reference's reconcile order, with kubetrain's fixes (reference section 10):

1. ``managedBy`` another controller, or the job being deleted -> nothing at all.
2. Finished (a Succeeded/Failed condition): clean pods per cleanPodPolicy (+ same-name
   services), fold active into succeeded for a Succeeded job, then TTL: delete the job (event
   ``SuccessfulDeleteJob`` for every kind: fix of quirk 10) or ``requeue_after`` the rest.
   Nothing else: the job is neither defaulted nor validated, so a compacted cached job (only
   metadata, ``spec.runPolicy`` and status: ``common/compact.py``) is enough, and an invalid
   job that was failed for it still gets its TTL. After its cleanup a finished job decides no
   write at all.
3. Default (in memory), then validate (every kind, MPI included); invalid -> ``invalid`` (the
   message naming the field), the Failed condition (and Created when the job has none),
   completionTime, a Warning ``<Kind>FailedValidation`` event and the counters, nothing else;
   nothing at all once that Failed condition is there (never retried: the spec must change).
4. ``Created`` is added when the job has no condition yet, and the created counter counts then:
   once per job, not again on an operator restart's initial list (fix of quirk 8).
5. Suspended: delete every pod and service (+ the HPA), active = 0, Running=False, Suspended=True;
   the ``<Kind>Suspended`` event only on the transition (fix of quirk 11).
6. Resuming: Suspended=False (``<Kind>Resumed``), startTime = now.
7. Backoff limit (counting every restart, fix of quirk 3) or active deadline exceeded: Failed is
   set *first* (so cleanPodPolicy applies, as v1.9.4), then cleanup; the ``<Kind>Failed`` event is
   a Warning on every failure path (fix of quirk 9).
8. Pods and services per replica type (create missing, delete out-of-range, restart Failed
   retryable pods, fail on permanent ExitCode failures), replica statuses, the kind's status rules.
   Success waits while a replica's pod is being created (``StatusWork.replicas_missing``): after
   a crash between a job's creates, the Master may have succeeded before its Workers existed.
   A job that finishes here is cleaned up in the same decision (no extra reconcile).
9. A running job with an active deadline gets ``requeue_after`` = time left (fix of quirk 3's
   no-op ``AddAfter``).

Gang scheduling (``DomainOptions.gang``, reference section 3; the rules are ``reconcilers/gang``):
a job that is neither finished nor suspended has its PodGroup in ``apply_objects`` (written only
when it differs from the cached one) and its pods decorated; with Volcano, pods are not created
while the cached PodGroup (``GangView.podgroup``) is absent or its phase is empty or Pending (the
Created condition's message and a Warning event say so); the PodGroup is deleted (when cached)
once the job finishes, fails or is suspended.

Conditions use reasons ``<Kind><Reason>`` with no double prefix (MPI: ``MPIJobFailed``, event
``MPIJobSucceeded``: fix of quirk 13).

Caller duties: pass the job as cached (not defaulted: this function defaults it); pass the pods
and services listed by the job's labels (ownership is re-checked here by controller UID); do not
call again for the job until the previous decision's creations and deletions are observed
(expectations), or a restart could be counted twice.
"""

from __future__ import annotations

from datetime import datetime

from kubetrain.base.jsoncopy import json_copy
from kubetrain.base.objects import Obj, is_controlled_by
from kubetrain.reconcilers.api.validation import aggregate_message
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.decision import (
    NORMAL,
    WARNING,
    SpecError,
    StatusDecision,
    StatusWork,
)
from kubetrain.reconcilers.common.jobs import (
    format_time,
    is_suspended_spec,
    managed_by_other,
    name_of,
    replica_specs,
    total_replicas,
    uid_of,
)
from kubetrain.reconcilers.common.kind_adapter import DomainOptions, KindAdapter
from kubetrain.reconcilers.common.pods import build_pod, plan_pods
from kubetrain.reconcilers.common.prepared import prepared_job
from kubetrain.reconcilers.common.priorities import LOW_PRIORITY, TTL_PRIORITY
from kubetrain.reconcilers.common.replica_status import (
    fold_active_into_succeeded,
    group_by_replica_type,
    replica_statuses,
    zero_active,
)
from kubetrain.reconcilers.common.runpolicy import (
    OPERATOR_RESTARTS_ANNOTATION,
    active_deadline,
    exceeds_backoff_on_new_failure,
    operator_restarts,
    past_active_deadline,
    past_backoff_limit,
    pods_to_clean,
)
from kubetrain.reconcilers.common.services import build_service, plan_services
from kubetrain.reconcilers.common.ttl import ttl_deadline
from kubetrain.reconcilers.gang.admission import pods_wait_for_podgroup, show_podgroup_wait
from kubetrain.reconcilers.gang.podgroup import desired_podgroup, podgroup_reference
from kubetrain.reconcilers.gang.view import NO_VIEW, GangView

_DEFAULT_OPTIONS = DomainOptions()


def ordered_types(adapter: KindAdapter, job: Obj) -> list[str]:
    """The job's replica types, canonical ones in the kind's order, then any others sorted."""
    specs = replica_specs(job, adapter.kind)
    known = [t for t in adapter.kind.replica_types if t in specs]
    return known + sorted(t for t in specs if t not in known)


def compute_status(
    adapter: KindAdapter,
    job: Obj,
    pods: list[Obj],
    services: list[Obj],
    *,
    now: datetime,
    options: DomainOptions = _DEFAULT_OPTIONS,
    gang_view: GangView = NO_VIEW,
) -> StatusDecision:
    """Decide one reconcile of ``job`` (see the module docstring). Never mutates its inputs.
    ``gang_view``: the job's cached PodGroup and the PriorityClass values (read only when
    ``options.gang`` is set)."""
    kind = adapter.kind
    old_status: Obj = job.get("status") or {}
    if managed_by_other(job, kind) or job.get("metadata", {}).get("deletionTimestamp"):
        return StatusDecision(status=old_status, status_changed=False)
    if cond.is_finished(old_status):
        return _decide_finished(
            adapter, job, pods, services, now=now, options=options, gang_view=gang_view
        )
    # A job is judged until it starts (startTime): one the operator already started was valid
    # then (by the webhook or by this check), and a stricter later kubetrain must not fail
    # running work on upgrade. Edits of a started job are the validating webhook's to refuse.
    # Both are done once per resourceVersion (``prepared.py``).
    job, errors = prepared_job(kind, job, validated=not old_status.get("startTime"))
    if errors:
        message = f"{kind.kind} failed validation because {aggregate_message(errors)}"
        return _decide_invalid(adapter, job, message, now=now)

    uid = uid_of(job)
    pods = [p for p in pods if is_controlled_by(p, uid)]
    services = [s for s in services if is_controlled_by(s, uid)]
    work = StatusWork(kind=kind, job=job, status=json_copy(old_status), now=now)
    decision = StatusDecision(
        status=work.status, status_changed=False, total_replicas=total_replicas(job, kind)
    )
    name = name_of(job)

    if not work.status.get("conditions"):
        work.set_condition(
            cond.CREATED,
            cond.TRUE,
            cond.created_message(kind.kind, name),
            suffix=cond.REASON_CREATED,
        )
        work.counters.created += 1

    if is_suspended_spec(job, kind):
        _suspend(adapter, work, decision, job, pods, services)
        _delete_podgroup(work, decision, job, options, gang_view, terminated=False)
        if options.gang is not None:
            show_podgroup_wait(work, options.gang, gang_view.podgroup, waiting=False)
        return _close(work, decision, old_status)

    if cond.is_suspended(work.status):
        message = cond.resumed_message(kind.kind, name)
        work.set_condition(cond.SUSPENDED, cond.FALSE, message, suffix=cond.REASON_RESUMED)
        work.status["startTime"] = format_time(now)
        work.event(NORMAL, cond.reason(kind.kind, cond.REASON_RESUMED), message)

    restarts = operator_restarts(job)
    previous_failed = sum(
        int(e.get("failed", 0)) for e in (work.status.get("replicaStatuses") or {}).values()
    )
    failure: str | None = None
    if exceeds_backoff_on_new_failure(
        job, kind, pods, previous_failed=previous_failed
    ) or past_backoff_limit(job, kind, pods, restarts=restarts):
        failure = cond.backoff_message(name)
    elif past_active_deadline(_with_status(job, work.status), kind, now):
        failure = cond.deadline_message(name)
    if failure is not None:
        work.status["replicaStatuses"] = replica_statuses(
            kind, name, ordered_types(adapter, job), pods
        )
        work.fail(failure)
        _finish(adapter, work, decision, job, pods, services)
        _delete_podgroup(work, decision, job, options, gang_view, terminated=True)
        return _close(work, decision, old_status)

    if "startTime" not in work.status:
        work.status["startTime"] = format_time(now)
    podgroup, hold_pods = _gang_step(adapter, work, decision, job, options, gang_view)
    new_restarts, held = _reconcile_replicas(
        adapter, work, decision, job, pods, services, options, hold_pods=hold_pods
    )
    if new_restarts:
        decision.job_annotations[OPERATOR_RESTARTS_ANNOTATION] = str(restarts + new_restarts)

    work.status["replicaStatuses"] = replica_statuses(kind, name, ordered_types(adapter, job), pods)
    work.replicas_missing = bool(decision.create_pods) or held > 0
    adapter.update_status(work, job, pods)

    if cond.is_finished(work.status):
        decision.create_pods.clear()
        decision.create_services.clear()
        _finish(adapter, work, decision, job, pods, services)
        _delete_podgroup(work, decision, job, options, gang_view, terminated=True)
        return _close(work, decision, old_status)

    if options.gang is not None:
        # held for a PodGroup that cannot be built: its FailedCreatePodGroup event says why
        waiting = held > 0 and podgroup is not None
        show_podgroup_wait(work, options.gang, gang_view.podgroup, waiting=waiting, pods=pods)
    if podgroup is not None:
        decision.apply_objects.append(podgroup)
    decision.apply_objects.extend(adapter.extra_objects(job, pods, options))
    deadline = active_deadline(_with_status(job, work.status), kind)
    if deadline is not None:
        decision.requeue_after = max(0.0, (deadline - now).total_seconds())
    return _close(work, decision, old_status)


def _decide_finished(
    adapter: KindAdapter,
    job: Obj,
    pods: list[Obj],
    services: list[Obj],
    *,
    now: datetime,
    options: DomainOptions,
    gang_view: GangView,
) -> StatusDecision:
    """Step 2 of the module docstring: a job already Succeeded/Failed, as cached (compacted,
    never defaulted or validated). Reads ``spec.runPolicy`` (+ MPI's deprecated
    ``spec.cleanPodPolicy``), ``status`` and the owned pods' phase and deletionTimestamp; with
    gang scheduling, deletes the PodGroup while the cache shows it."""
    old_status: Obj = job.get("status") or {}
    uid = uid_of(job)
    pods = [p for p in pods if is_controlled_by(p, uid)]
    services = [s for s in services if is_controlled_by(s, uid)]
    # A shallow copy is enough: ``_finish`` only replaces top-level status keys.
    work = StatusWork(kind=adapter.kind, job=job, status=dict(old_status), now=now)
    decision = StatusDecision(status=work.status, status_changed=False)
    _finish(adapter, work, decision, job, pods, services)
    _delete_podgroup(work, decision, job, options, gang_view, terminated=True)
    return _close(work, decision, old_status)


def _decide_invalid(
    adapter: KindAdapter, job: Obj, message: str, *, now: datetime
) -> StatusDecision:
    """Step 3's failure: the Failed condition naming the field (and Created when the job has no
    condition yet), completionTime, a Warning ``<Kind>FailedValidation`` event; nothing at all
    when that Failed condition is already there."""
    kind = adapter.kind
    old_status: Obj = job.get("status") or {}
    decision = StatusDecision(status=old_status, status_changed=False, invalid=message)
    failed = cond.get_condition(old_status.get("conditions") or [], cond.FAILED)
    if failed is not None and failed.get("message") == message:
        return decision
    work = StatusWork(kind=kind, job=job, status=json_copy(old_status), now=now)
    if not work.status.get("conditions"):
        work.set_condition(
            cond.CREATED,
            cond.TRUE,
            cond.created_message(kind.kind, name_of(job)),
            suffix=cond.REASON_CREATED,
        )
        work.counters.created += 1
    reason = cond.reason(kind.kind, cond.REASON_FAILED_VALIDATION)
    work.set_condition(cond.FAILED, cond.TRUE, message, suffix="", reason=reason)
    work.status.setdefault("completionTime", format_time(now))
    work.event(WARNING, reason, message)
    work.counters.failed += 1
    return _close(work, decision, old_status)


def _gang_step(
    adapter: KindAdapter,
    work: StatusWork,
    decision: StatusDecision,
    job: Obj,
    options: DomainOptions,
    gang_view: GangView,
) -> tuple[Obj | None, bool]:
    """``(the PodGroup to apply, whether pod creation waits)``; ``(None, False)`` without gang
    scheduling. A PodGroup that cannot be built (a malformed quantity) is a spec error, and its
    pods wait: pods of a gang must not start without their group."""
    gang = options.gang
    if gang is None:
        return None, False
    try:
        podgroup = desired_podgroup(gang, job, adapter.kind, gang_view)
    except SpecError as err:
        _spec_error(work, decision, "FailedCreatePodGroup", err)
        return None, True
    return podgroup, pods_wait_for_podgroup(gang, gang_view.podgroup)


def _delete_podgroup(
    work: StatusWork,
    decision: StatusDecision,
    job: Obj,
    options: DomainOptions,
    gang_view: GangView,
    *,
    terminated: bool,
) -> None:
    """Delete the job's PodGroup when gang scheduling is on and the cache shows it (not already
    being deleted); its deletion event wakes the job again if the cache was behind. A
    ``terminated`` job (finished or failed, not suspended) first gets the reference's Normal
    ``JobTerminated`` event with each deletion: normally once, since the deletion is decided only
    while the cache shows the group (the reference emitted it on every reconcile of a finished
    job)."""
    podgroup = gang_view.podgroup
    if options.gang is None or podgroup is None:
        return
    if (podgroup.get("metadata") or {}).get("deletionTimestamp"):
        return
    if terminated:
        work.event(NORMAL, "JobTerminated", "Job has been terminated. Deleting PodGroup")
    decision.delete_objects.append(podgroup_reference(options.gang, job))


def _reconcile_replicas(
    adapter: KindAdapter,
    work: StatusWork,
    decision: StatusDecision,
    job: Obj,
    pods: list[Obj],
    services: list[Obj],
    options: DomainOptions,
    *,
    hold_pods: bool = False,
) -> tuple[int, int]:
    """Fill pod and service creations/deletions; returns ``(pods re-created, pods held)``:
    with ``hold_pods`` (Volcano's PodGroup not admitted yet) missing pods are counted, not
    built."""
    name = name_of(job)
    restarted = 0
    held = 0
    pods_by_type = group_by_replica_type(pods)
    services_by_type = group_by_replica_type(services) if adapter.needs_services else {}
    for rtype in ordered_types(adapter, job):
        # ``plan.exited`` is not turned into ExitedWithCode events here: the controller records
        # them once per termination (``reconcilers/exits.py``), not on every reconcile.
        plan = plan_pods(adapter, job, rtype, pods_by_type.get(rtype.lower(), []))
        decision.delete_pods.extend(plan.delete)
        for pod in plan.restart:
            decision.delete_pods.append(pod["metadata"]["name"])
            restarted += 1
            work.restart(
                f"job {name} is restarting because {rtype} replica(s) failed.", always=True
            )
        for pod, verdict in plan.failed:
            message = f'job "{name}" is failing because "{rtype}" replica(s) failed.'
            if verdict.exit_code is None:
                message += f" Pod {pod['metadata']['name']}: {verdict.cause}."
            work.fail(message)
        if hold_pods:
            held += len(plan.create)
            plan.create.clear()
        for index in plan.create:
            try:
                body, events = build_pod(adapter, job, rtype, index, options=options)
            except SpecError as err:
                _spec_error(work, decision, "FailedCreatePod", err)
                break
            work.events.extend(events)
            decision.create_pods.append(body)
        if not adapter.needs_services:
            continue
        splan = plan_services(adapter, job, rtype, services_by_type.get(rtype.lower(), []))
        decision.delete_services.extend(splan.delete)
        for index in splan.create:
            try:
                decision.create_services.append(build_service(adapter, job, rtype, index))
            except SpecError as err:
                _spec_error(work, decision, "FailedCreateService", err)
                break
    return restarted, held


def _spec_error(work: StatusWork, decision: StatusDecision, reason: str, err: SpecError) -> None:
    work.event(WARNING, reason, f"Error creating: {err}")
    decision.error = str(err)


def _finish(
    adapter: KindAdapter,
    work: StatusWork,
    decision: StatusDecision,
    job: Obj,
    pods: list[Obj],
    services: list[Obj],
) -> None:
    """Cleanup per cleanPodPolicy, succeeded fold, TTL."""
    kind = adapter.kind
    already = set(decision.delete_pods)
    cleaned = [
        p["metadata"]["name"]
        for p in pods_to_clean(job, kind, pods, finished=True)
        if p["metadata"]["name"] not in already
    ]
    decision.delete_pods.extend(cleaned)
    live_services = {
        s["metadata"]["name"] for s in services if not s["metadata"].get("deletionTimestamp")
    }
    decision.delete_services.extend(
        n for n in decision.delete_pods if n in live_services and n not in decision.delete_services
    )
    if cond.is_succeeded(work.status) and work.status.get("replicaStatuses"):
        work.status["replicaStatuses"] = fold_active_into_succeeded(work.status["replicaStatuses"])
    deadline = ttl_deadline(job, kind, work.status)
    if deadline is None:
        return
    decision.ttl_deadline = deadline
    remaining = (deadline - work.now).total_seconds()
    if remaining <= 0:
        decision.delete_job = True
        work.event(NORMAL, "SuccessfulDeleteJob", f"Deleted job: {name_of(job)}")
        work.counters.deleted += 1
    else:
        decision.requeue_after = remaining


def _suspend(
    adapter: KindAdapter,
    work: StatusWork,
    decision: StatusDecision,
    job: Obj,
    pods: list[Obj],
    services: list[Obj],
) -> None:
    kind, name = adapter.kind, name_of(job)
    decision.delete_pods.extend(
        p["metadata"]["name"] for p in pods_to_clean(job, kind, pods, finished=False)
    )
    decision.delete_services.extend(
        s["metadata"]["name"] for s in services if not s["metadata"].get("deletionTimestamp")
    )
    decision.delete_objects.extend(adapter.extra_objects_to_delete(job))
    stored = work.status.get("replicaStatuses") or replica_statuses(
        kind, name, ordered_types(adapter, job), []
    )
    work.status["replicaStatuses"] = zero_active(stored)
    message = cond.suspended_message(kind.kind, name)
    if cond.is_running(work.status):
        work.set_condition(cond.RUNNING, cond.FALSE, message, suffix=cond.REASON_SUSPENDED)
    if not cond.is_suspended(work.status):
        work.set_condition(cond.SUSPENDED, cond.TRUE, message, suffix=cond.REASON_SUSPENDED)
        work.event(NORMAL, cond.reason(kind.kind, cond.REASON_SUSPENDED), message)


def _close(work: StatusWork, decision: StatusDecision, old_status: Obj) -> StatusDecision:
    decision.status = work.status
    decision.status_changed = work.status != old_status
    decision.events = work.events
    decision.counters = work.counters
    if cond.is_finished(work.status):
        # A finished job's requeue is its TTL's (due on the clock: first); the rest can wait.
        decision.priority = TTL_PRIORITY if decision.requeue_after is not None else LOW_PRIORITY
    return decision


def _with_status(job: Obj, status: Obj) -> Obj:
    return {**job, "status": status}
