"""What the job controllers cache of jobs and pods: finished ones compacted to what is read.

Finished jobs and their pods are most of a long-lived cluster's objects, and after their cleanup
and TTL are scheduled the only code that reads them is the finished branch of ``compute_status``
(cleanup per cleanPodPolicy, the succeeded fold, the TTL deadline) and the owner/index machinery.
So the informers' ingest transforms keep just that:

- ``compact_job`` (the job informers' transform): a job with a true Succeeded/Failed condition
  keeps ``apiVersion``, ``kind``, ``metadata`` (uid, labels, annotations, ownerReferences,
  resourceVersion, deletionTimestamp...; no managedFields / last-applied), ``spec.runPolicy``,
  MPIJob's deprecated ``spec.cleanPodPolicy``, and ``status`` with only its terminal conditions
  (type, status, reason, lastTransitionTime), ``startTime``, ``completionTime`` and
  ``replicaStatuses`` without the ``selector`` strings. Equal ``spec`` and ``replicaStatuses``
  values are one shared object. A running job is only stripped of managedFields and the
  last-applied annotation.
- ``slim_pod`` (the owned-pod informer's transform): every pod loses ``spec`` and annotations and
  keeps the status fields the state machine reads (and a ``PodScheduled=False`` condition: why
  the scheduler cannot place it, shown on the job under gang scheduling; and ``Ready=True``, without
  its times, which MPIJob v2beta1's ``WaitForWorkersReady`` counts); a pod in phase
  Succeeded/Failed further keeps
  only name, namespace, uid, resourceVersion, labels, ownerReferences and deletionTimestamp, and a
  status of phase, reason and per container only its name, restartCount (when not 0) and terminated
  exitCode (init containers only when they restarted or failed). Equal finished statuses (most
  are ``Succeeded`` with exit code 0) and a job's pods' ``ownerReferences`` are shared objects.

Contract (caller duties): a compacted object is not a full object. NEVER PUT it (an update would
wipe what was dropped): writes to a finished job are merge patches of the changed status fields
(``JobReconciler``), and no code mutates a cached object (parts of finished objects are shared
between objects). Both transforms are idempotent and may mutate their freshly parsed argument.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any

import orjson

from kubetrain.base.objects import Obj
from kubetrain.informers.transforms import compact_finished

__all__ = ["compact_job", "merge_patch_of", "slim_pod"]

_FINISHED_JOB = compact_finished(
    keep=(
        "spec.runPolicy",
        "spec.cleanPodPolicy",
        "status.startTime",
        "status.completionTime",
        "status.replicaStatuses",
    )
)
_TERMINAL_TYPES = frozenset(("Succeeded", "Failed"))


def _finished_job(obj: Obj) -> bool:
    status = obj.get("status")
    if not status:
        return False
    return any(
        c.get("type") in _TERMINAL_TYPES and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )


def _intern_str(mapping: dict[str, Any], key: str) -> None:
    value = mapping.get(key)
    if type(value) is str:
        mapping[key] = sys.intern(value)


def compact_job(obj: Obj) -> Obj:
    """The job as the job controller caches it (see the module docstring)."""
    if not _finished_job(obj):
        return _FINISHED_JOB(obj)  # strips managedFields / last-applied only
    out = _FINISHED_JOB(obj)
    status: Obj = out["status"]
    # One string for the times that repeat (start == completion == transition within a second).
    for key in ("startTime", "completionTime"):
        _intern_str(status, key)
    for condition in status.get("conditions") or ():
        _intern_str(condition, "lastTransitionTime")
    statuses = status.get("replicaStatuses")
    if isinstance(statuses, dict):
        status["replicaStatuses"] = _shared_job_parts.share(
            {
                rtype: {k: v for k, v in entry.items() if k != "selector"}
                if isinstance(entry, dict)
                else entry
                for rtype, entry in statuses.items()
            }
        )
    if "spec" in out:
        out["spec"] = _shared_job_parts.share(out["spec"])
    meta = out.get("metadata") or {}
    _intern_str(meta, "uid")  # its pods' ownerReferences share it
    return out


#: The one (shared, never mutated) value of a kept ``Ready=True`` pod condition.
_READY: Obj = {"type": "Ready", "status": "True"}
_POD_STATUS_KEEP = ("phase", "reason", "message", "containerStatuses", "initContainerStatuses")
_CONTAINER_STATUS_KEEP = ("name", "state", "lastState", "restartCount")
_FINISHED_PHASES = frozenset(("Succeeded", "Failed"))
_FINISHED_META_KEEP = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "ownerReferences",
    "deletionTimestamp",
)
_OWNER_KEEP = ("apiVersion", "kind", "name", "uid", "controller")


class _SharedValues:
    """Equal read-only values stored once: ``share(value)`` returns the value last seen with the
    same content (finished pods' statuses and a job's pods' ``ownerReferences``, jobs'
    ``spec.runPolicy`` and ``replicaStatuses`` repeat across many objects). Bounded: the least
    recently shared of more than ``limit`` contents is forgotten (objects keep their value)."""

    __slots__ = ("_limit", "_values")

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._values: OrderedDict[bytes, Any] = OrderedDict()

    def share(self, value: Any) -> Any:
        signature = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        shared = self._values.get(signature)
        if shared is not None:
            self._values.move_to_end(signature)
            return shared
        self._values[signature] = value
        if len(self._values) > self._limit:
            self._values.popitem(last=False)
        return value


_shared_pod_parts = _SharedValues()
_shared_job_parts = _SharedValues()


def _finished_container(cs: Obj, *, init: bool) -> Obj | None:
    out: Obj = {}
    if "name" in cs:
        out["name"] = sys.intern(str(cs["name"]))
    restarts = cs.get("restartCount")
    if restarts:
        out["restartCount"] = restarts
    term = (cs.get("state") or {}).get("terminated")
    code = term.get("exitCode") if isinstance(term, dict) else None
    if code is not None:
        out["state"] = {"terminated": {"exitCode": code}}
    if init and not restarts and not code:
        return None  # an init container that ran once and exited 0: nothing is read from it
    return out


def _finished_status(status: Obj) -> Obj:
    out: Obj = {"phase": sys.intern(str(status["phase"]))}
    if status.get("reason"):
        out["reason"] = sys.intern(str(status["reason"]))
    for key, init in (("containerStatuses", False), ("initContainerStatuses", True)):
        kept = [
            c
            for c in (_finished_container(cs, init=init) for cs in status.get(key) or ())
            if c is not None
        ]
        if kept:
            out[key] = kept
    shared: Obj = _shared_pod_parts.share(out)
    return shared


def _finished_pod(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    slim_meta: Obj = {k: meta[k] for k in _FINISHED_META_KEEP if k in meta}
    _intern_str(slim_meta, "namespace")
    labels = slim_meta.get("labels")
    if labels:
        slim_meta["labels"] = {k: sys.intern(v) if type(v) is str else v for k, v in labels.items()}
    refs = slim_meta.get("ownerReferences")
    if refs:
        slim_refs = []
        for ref in refs:
            slim_ref = {k: ref[k] for k in _OWNER_KEEP if k in ref}
            for key in ("apiVersion", "kind", "name", "uid"):
                _intern_str(slim_ref, key)
            slim_refs.append(slim_ref)
        slim_meta["ownerReferences"] = _shared_pod_parts.share(slim_refs)
    out: Obj = {"metadata": slim_meta, "status": _finished_status(obj.get("status") or {})}
    for key in ("apiVersion", "kind"):
        if key in obj:
            out[key] = sys.intern(str(obj[key]))
    return out


def slim_pod(obj: Obj) -> Obj:
    """The pod as the reconciler reads it: metadata (no managedFields, no annotations) and the
    status fields the state machine reads (phase, reason, container states and restart counts);
    a finished pod (Succeeded/Failed) only what the module docstring lists. ``spec`` is dropped:
    the template lives in the job. Never PUT a slimmed pod."""
    status = obj.get("status") or {}
    if status.get("phase") in _FINISHED_PHASES:
        return _finished_pod(obj)
    meta = obj.get("metadata") or {}
    meta.pop("managedFields", None)
    meta.pop("annotations", None)
    slim_status: Obj = {k: status[k] for k in _POD_STATUS_KEEP if k in status}
    kept: list[Obj] = []
    for c in status.get("conditions") or ():
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            # why the scheduler cannot place it (gang/admission.py shows it on the job)
            kept.append({k: c[k] for k in ("type", "status", "reason", "message") if k in c})
        elif c.get("type") == "Ready" and c.get("status") == "True":
            kept.append(_READY)  # MPIJob v2beta1's WaitForWorkersReady counts ready workers
    if kept:
        slim_status["conditions"] = kept
    for key in ("containerStatuses", "initContainerStatuses"):
        if key in slim_status:
            slim_status[key] = [
                {k: cs[k] for k in _CONTAINER_STATUS_KEEP if k in cs} for cs in slim_status[key]
            ]
    out: Obj = {"metadata": meta, "status": slim_status}
    for key in ("apiVersion", "kind"):
        if key in obj:
            out[key] = obj[key]
    return out


def merge_patch_of(old: Obj, new: Obj) -> Obj:
    """The RFC 7386 JSON merge patch turning ``old`` into ``new``: changed keys only, ``None``
    for removed ones, nested maps diffed, lists replaced whole. The way to write a compacted
    object: ``old`` is the cached (compacted) value, so only what changed is sent and the fields
    the cache dropped are left alone on the server. Caller duty: never diff a list the cache
    trimmed (a finished job's ``status.conditions``): it would be replaced by the trimmed one."""
    patch: Obj = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        before = old[key]
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            patch[key] = merge_patch_of(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
