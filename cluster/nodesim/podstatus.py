"""Render a timeline ``Stage`` as the pod ``status`` a kubelet would report.

Pure functions over plain dicts: the kubelet passes the current status (to keep condition
transition times and fields it does not own, such as ``qosClass`` or others' conditions) and gets
the new one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .timeline import ContainerState, Stage, Terminated

__all__ = ["RunIdentity", "render_status", "rfc3339", "terminate_status"]

_OWN_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


def rfc3339(wall: float) -> str:
    """``2024-01-02T03:04:05Z`` (kube's metav1.Time, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunIdentity:
    """What stays fixed over one admitted pod's life."""

    uid: str
    started_wall: float
    """Wall-clock time of admission (stage offsets are added to it)."""
    host_ip: str
    pod_ip: str
    init_names: tuple[str, ...]
    init_images: tuple[str, ...]
    main_names: tuple[str, ...]
    main_images: tuple[str, ...]


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _terminated(run: RunIdentity, term: Terminated, cid: str) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": term.exit_code,
            "reason": term.reason,
            "startedAt": rfc3339(run.started_wall + term.started),
            "finishedAt": rfc3339(run.started_wall + term.finished),
            "containerID": cid,
        }
    }


def _container_status(run: RunIdentity, name: str, image: str, c: ContainerState) -> dict[str, Any]:
    cid = "containerd://" + _digest(run.uid, name, str(c.restart_count))
    if c.state == "running":
        state: dict[str, Any] = {"running": {"startedAt": rfc3339(run.started_wall + c.started)}}
    elif c.state == "terminated" and c.terminated is not None:
        state = _terminated(run, c.terminated, cid)
    else:
        waiting: dict[str, Any] = {"reason": c.reason}
        if c.reason == "CrashLoopBackOff" and c.last is not None:
            waiting["message"] = (
                f"back-off restarting failed container {name} in pod (simulated by kubetrain)"
            )
        state = {"waiting": waiting}
    status: dict[str, Any] = {
        "name": name,
        "state": state,
        "lastState": (
            _terminated(
                run, c.last, "containerd://" + _digest(run.uid, name, str(c.restart_count - 1))
            )
            if c.last is not None
            else {}
        ),
        "ready": c.ready,
        "restartCount": c.restart_count,
        "image": image,
        "imageID": f"{image.split('@')[0]}@sha256:{_digest(image)}",
        "started": c.state == "running",
    }
    if c.state != "waiting":
        status["containerID"] = cid
    return status


def _condition(
    ctype: str, ok: bool, reason: str, message: str, old: Mapping[str, Mapping[str, Any]], now: str
) -> dict[str, Any]:
    status = "True" if ok else "False"
    previous = old.get(ctype)
    kept = previous.get("lastTransitionTime") if previous is not None else None
    changed = previous is None or previous.get("status") != status or not kept
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now if changed else kept,
    }
    if not ok and reason:
        cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


def _unready(names: Sequence[str], states: Sequence[ContainerState], *, init: bool) -> str:
    if init:
        bad = [n for n, s in zip(names, states, strict=True) if s.state != "terminated"]
        return f"containers with incomplete status: [{' '.join(bad)}]"
    bad = [n for n, s in zip(names, states, strict=True) if not s.ready]
    return f"containers with unready status: [{' '.join(bad)}]"


def render_status(run: RunIdentity, stage: Stage, current: Mapping[str, Any]) -> dict[str, Any]:
    """The pod status for ``stage``, built over ``current`` (the stored status)."""
    now = rfc3339(run.started_wall + stage.at)
    old_conditions: dict[str, Mapping[str, Any]] = {
        str(c.get("type")): c for c in current.get("conditions") or [] if isinstance(c, Mapping)
    }
    terminal = stage.phase in ("Succeeded", "Failed")
    initialized = stage.initialized
    ready = stage.containers_ready
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    ready_message = "" if terminal else _unready(run.main_names, stage.main, init=False)
    conditions = [
        c for c in current.get("conditions") or [] if c.get("type") not in _OWN_CONDITIONS
    ]
    scheduled = old_conditions.get("PodScheduled")
    conditions += [
        dict(scheduled)
        if scheduled is not None and scheduled.get("status") == "True"
        else _condition("PodScheduled", True, "", "", old_conditions, rfc3339(run.started_wall)),
        _condition(
            "Initialized",
            initialized,
            "ContainersNotInitialized",
            "" if initialized else _unready(run.init_names, stage.init, init=True),
            old_conditions,
            now,
        ),
        _condition("ContainersReady", ready, ready_reason, ready_message, old_conditions, now),
        _condition("Ready", ready, ready_reason, ready_message, old_conditions, now),
    ]
    status = dict(current)
    status.update(
        {
            "phase": stage.phase,
            "conditions": conditions,
            "hostIP": run.host_ip,
            "hostIPs": [{"ip": run.host_ip}],
            "podIP": run.pod_ip,
            "podIPs": [{"ip": run.pod_ip}],
            "startTime": rfc3339(run.started_wall),
            "containerStatuses": [
                _container_status(run, n, img, c)
                for n, img, c in zip(run.main_names, run.main_images, stage.main, strict=True)
            ],
        }
    )
    if run.init_names:
        status["initContainerStatuses"] = [
            _container_status(run, n, img, c)
            for n, img, c in zip(run.init_names, run.init_images, stage.init, strict=True)
        ]
    status.pop("reason", None)
    status.pop("message", None)
    return status


def terminate_status(
    current: Mapping[str, Any], *, exit_code: int, now_wall: float
) -> dict[str, Any]:
    """Status of a pod whose containers were stopped for deletion: every running or waiting
    container terminated with ``exit_code`` (ready False), phase Succeeded/Failed as a kubelet
    reports a pod it finished terminating."""
    status = dict(current)
    stamp = rfc3339(now_wall)
    any_failed = False
    for field in ("initContainerStatuses", "containerStatuses"):
        out = []
        for cs in current.get(field) or []:
            cs = dict(cs)
            state = cs.get("state") or {}
            if "terminated" not in state:
                started = (state.get("running") or {}).get("startedAt") or stamp
                cs["state"] = {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "startedAt": started,
                        "finishedAt": stamp,
                        "containerID": cs.get("containerID", ""),
                    }
                }
                if field == "containerStatuses":
                    any_failed = any_failed or exit_code != 0
            elif field == "containerStatuses":
                any_failed = any_failed or state["terminated"].get("exitCode", 0) != 0
            cs["ready"] = False
            cs["started"] = False
            out.append(cs)
        if out:
            status[field] = out
    status["phase"] = (
        "Failed" if any_failed or not current.get("containerStatuses") else "Succeeded"
    )
    conditions = []
    for c in current.get("conditions") or []:
        c = dict(c)
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") != "False":
            c.update(status="False", reason="PodCompleted", lastTransitionTime=stamp)
            c.pop("message", None)
        conditions.append(c)
    status["conditions"] = conditions
    return status
