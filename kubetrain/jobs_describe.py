"""``kubetrain jobs describe``: one job for a person, like ``kubectl describe``, whatever its kind.

Why: what a person asks of a stuck or failed job is spread over three resources: the job (state,
conditions), its pods (which replica is not ready, restarting, on which node) and the Events the
operator recorded on it. Here they are read with the user's kubeconfig and shown together; the
replicas are grouped by replica type (a TrainJob's by replicated job). ``-o json|yaml`` prints
the job object itself, for scripts.
"""

from __future__ import annotations

import datetime
from typing import Any, TextIO

import orjson
import yaml

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import EVENTS, PODS
from kubetrain.informers.transport import ApiStatusError
from kubetrain.jobs_ref import EXIT_NOT_FOUND, JobRef, fetch_job
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.common.jobs import parse_time
from kubetrain.reconcilers.jobview import (
    TRAINJOB,
    finished_at,
    job_state,
    pod_replica,
    pod_selector,
)

__all__ = ["describe", "job_events", "render"]


def human(seconds: float | None) -> str:
    """``42s``, ``3m20s``, ``2h5m``, ``4d``; empty for None."""
    if seconds is None:
        return ""
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60}m" if s < 86400 else f"{s // 86400}d"


async def job_events(client: ApiClient, ref: JobRef, uid: str | None) -> list[dict[str, Any]]:
    """The core/v1 Events whose involvedObject is the job, oldest first: a field selector where
    the server takes one, else the namespace's Events filtered here."""
    selector = f"involvedObject.name={ref.name},involvedObject.kind={ref.kind}"
    try:
        events = await client.list_all(EVENTS, ref.namespace, field_selector=selector)
    except ApiStatusError as e:
        if e.code != 400:
            raise
        events = await client.list_all(EVENTS, ref.namespace)
    mine = []
    for ev in events:
        obj = ev.get("involvedObject") or {}
        if obj.get("kind") != ref.kind or obj.get("name") != ref.name:
            continue
        if uid and obj.get("uid") and obj.get("uid") != uid:
            continue  # an earlier job of the same name
        mine.append(ev)
    return sorted(mine, key=_event_time)


def _event_time(ev: dict[str, Any]) -> str:
    return str(
        ev.get("lastTimestamp")
        or ev.get("eventTime")
        or ev.get("firstTimestamp")
        or (ev.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _pod_row(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return [
        str(pod["metadata"]["name"]),
        str(status.get("phase") or "Pending"),
        f"{ready}/{total}",
        str(restarts),
        str((pod.get("spec") or {}).get("nodeName") or "<none>"),
    ]


def _replica_groups(
    ref: JobRef, job: dict[str, Any], pods: list[dict[str, Any]]
) -> dict[str, tuple[int | None, list[dict[str, Any]]]]:
    """Replica type -> (replicas asked, its pods by index): a v1 job's types from its spec (also
    those without pods yet), a TrainJob's replicated jobs as its pods show them."""
    groups: dict[str, tuple[int | None, list[dict[str, Any]]]] = {}
    if ref.kind != TRAINJOB:
        specs = (job.get("spec") or {}).get(BY_KIND[ref.kind].replica_field) or {}
        for rtype, spec in specs.items():
            groups[str(rtype)] = (int((spec or {}).get("replicas", 1)), [])
    by_lower = {k.lower(): k for k in groups}
    for pod in sorted(
        pods, key=lambda p: (pod_replica(ref.kind, p)[1] or 0, p["metadata"]["name"])
    ):
        rtype, _ = pod_replica(ref.kind, pod)
        key = by_lower.get(rtype, rtype or "(unlabelled)")
        groups.setdefault(key, (None, []))[1].append(pod)
    return groups


def render(
    ref: JobRef,
    job: dict[str, Any],
    pods: list[dict[str, Any]],
    events: list[dict[str, Any]],
    *,
    now: datetime.datetime,
) -> str:
    """The description (see the module docstring)."""
    meta = job.get("metadata") or {}
    created = parse_time(meta.get("creationTimestamp"))
    finished = finished_at(ref.kind, job)
    lines = [
        f"Kind:        {ref.kind}",
        f"Namespace:   {ref.namespace}",
        f"Name:        {ref.name}",
        f"State:       {job_state(ref.kind, job)}",
        f"Created:     {meta.get('creationTimestamp', '<unknown>')}"
        + (f" ({human((now - created).total_seconds())} ago)" if created else ""),
        f"Finished:    {finished.isoformat() if finished else '<running>'}",
        f"Duration:    {human(((finished or now) - created).total_seconds()) if created else ''}",
        "Replicas:" if ref.kind != TRAINJOB else "Replicated jobs:",
    ]
    for rtype, (asked, members) in _replica_groups(ref, job, pods).items():
        lines.append(f"  {rtype}" + (f" ({asked} asked)" if asked is not None else "") + ":")
        if not members:
            lines.append("    <no pods>")
            continue
        rows = [["POD", "PHASE", "READY", "RESTARTS", "NODE"], *(_pod_row(p) for p in members)]
        lines.extend(_table(rows, "    "))
    conditions = (job.get("status") or {}).get("conditions") or []
    lines.append("Conditions:" if conditions else "Conditions:  <none>")
    if conditions:
        rows = [["TYPE", "STATUS", "REASON", "MESSAGE", "TIME"]]
        for c in conditions:
            rows.append(
                [
                    str(c.get(k) or "")
                    for k in ("type", "status", "reason", "message", "lastTransitionTime")
                ]
            )
        lines.extend(_table(rows, "  "))
    lines.append("Events:" if events else "Events:      <none>")
    if events:
        rows = [["TIME", "TYPE", "REASON", "COUNT", "MESSAGE"]]
        for ev in events:
            rows.append(
                [
                    _event_time(ev),
                    str(ev.get("type") or ""),
                    str(ev.get("reason") or ""),
                    str(ev.get("count") or 1),
                    str(ev.get("message") or ev.get("note") or ""),
                ]
            )
        lines.extend(_table(rows, "  "))
    return "\n".join(lines) + "\n"


async def describe(client: ApiClient, ref: JobRef, output: str, out: TextIO, err: TextIO) -> int:
    """Print the job (``output``: ``text``, ``json`` or ``yaml``); 3 when it does not exist."""
    job = await fetch_job(client, ref)
    if job is None:
        print(f"{ref.kind} {ref.namespace}/{ref.name} not found", file=err)
        return EXIT_NOT_FOUND
    if output == "json":
        out.write(orjson.dumps(job, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if output == "yaml":
        out.write(yaml.safe_dump(job, sort_keys=False))
        return 0
    pods = await client.list_all(
        PODS, ref.namespace, label_selector=pod_selector(ref.kind, ref.name)
    )
    events = await job_events(client, ref, (job.get("metadata") or {}).get("uid"))
    out.write(render(ref, job, pods, events, now=datetime.datetime.now(datetime.UTC)))
    return 0
