"""``meta.k8s.io/v1`` Table output for kubectl's ``get`` (``Accept: ...;as=Table;...``).

Columns: NAME, then a CRD version's additionalPrinterColumns (simple JSONPath: ``.a.b``,
``.a[0].b``, ``.a[-1:].b``) or, for built-ins, a few kind-specific ones; AGE last unless the
CRD declares it. Rows carry PartialObjectMetadata (kubectl uses it for -A and sorting).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .resources import ResourceInfo

__all__ = ["age", "to_table", "wants_table"]

_NAME_COL = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COL = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
    "priority": 0,
}
_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(-?\d+)(:)?\]")


def wants_table(request: web.Request) -> bool:
    """Whether the client asked for a Table (kubectl get)."""
    return "as=Table" in request.headers.get("Accept", "")


def _epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    try:
        return float(calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def age(timestamp: str | None, now: float | None = None) -> str:
    """kube's ``HumanDuration`` of the time since ``timestamp`` (e.g. 5s, 3m2s, 4h, 2d)."""
    created = _epoch(timestamp)
    if created is None:
        return "<unknown>"
    return human_duration((now if now is not None else time.time()) - created)


def human_duration(seconds: float) -> str:
    """kube's ``duration.HumanDuration`` (e.g. 5s, 3m2s, 4h, 2d)."""
    secs = max(0, int(seconds))
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return f"{minutes}m{secs % 60}s" if secs % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def _jsonpath(obj: Any, path: str) -> Any:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    node = obj
    for m in _STEP.finditer(path):
        if m.group(1) is not None:
            node = node.get(m.group(1)) if isinstance(node, Mapping) else None
        else:
            if not isinstance(node, list) or not node:
                return None
            idx = int(m.group(2))
            try:
                node = node[idx]
            except IndexError:
                return None
        if node is None:
            return None
    return node


def _pod_cells(obj: Mapping[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    phase = status.get("phase", "")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return [f"{ready}/{len(spec.get('containers') or [])}", phase, restarts]


_POD_COLS = [
    {"name": "Ready", "type": "string", "format": "", "description": "", "priority": 0},
    {"name": "Status", "type": "string", "format": "", "description": "", "priority": 0},
    {"name": "Restarts", "type": "string", "format": "", "description": "", "priority": 0},
]


def _has(conditions: list[Mapping[str, Any]], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions)


def _job_cells(obj: Mapping[str, Any], now: float) -> list[Any]:
    """kubectl's Job columns (kube's ``printJob``): status, completions, duration, and for
    ``-o wide`` containers, images and selector."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    if _has(conditions, "Complete"):
        state = "Complete"
    elif _has(conditions, "Failed"):
        state = "Failed"
    elif (obj.get("metadata") or {}).get("deletionTimestamp"):
        state = "Terminating"
    elif _has(conditions, "Suspended"):
        state = "Suspended"
    elif _has(conditions, "FailureTarget"):
        state = "FailureTarget"
    elif _has(conditions, "SuccessCriteriaMet"):
        state = "SuccessCriteriaMet"
    else:
        state = "Running"
    succeeded = int(status.get("succeeded") or 0)
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if completions is not None:
        done = f"{succeeded}/{completions}"
    elif parallelism is not None and int(parallelism) > 1:
        done = f"{succeeded}/1 of {parallelism}"
    else:
        done = f"{succeeded}/1"
    started, finished = _epoch(status.get("startTime")), _epoch(status.get("completionTime"))
    took = "" if started is None else human_duration((finished or now) - started)
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = ",".join(
        f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()
    )
    return [
        state,
        done,
        took,
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
        selector,
    ]


def _column(name: str, priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": "string", "format": "", "description": "", "priority": priority}


_JOB_COLS = [_column(n) for n in ("Status", "Completions", "Duration")]
_JOB_WIDE_COLS = [_column(n, 1) for n in ("Containers", "Images", "Selector")]


def to_table(
    info: ResourceInfo, items: list[dict[str, Any]], list_meta: dict[str, Any], request: web.Request
) -> dict[str, Any]:
    """A Table of ``items`` with ``list_meta`` (resourceVersion, continue)."""
    now = time.time()
    columns: list[dict[str, Any]] = [_NAME_COL]
    printer = [c for c in info.printer_columns if c.get("jsonPath")]
    is_pod = info.builtin and info.storage_key == ("", "pods")
    is_job = info.builtin and info.storage_key == ("batch", "jobs")
    if printer:
        columns += [
            {
                "name": c["name"],
                "type": c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": int(c.get("priority", 0)),
            }
            for c in printer
        ]
    elif is_pod:
        columns += _POD_COLS
    elif is_job:
        columns += _JOB_COLS
    has_age = any(c.get("jsonPath") == ".metadata.creationTimestamp" for c in printer)
    if not has_age:
        columns.append(_AGE_COL)
    if is_job and not printer:  # kube's wide columns come after AGE
        columns += _JOB_WIDE_COLS
    include_object = request.query.get("includeObject", "Metadata")
    rows = []
    for obj in items:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [meta.get("name", "")]
        if printer:
            for c in printer:
                value = _jsonpath(obj, c["jsonPath"])
                if c.get("type") == "date" and isinstance(value, str):
                    value = age(value, now)
                cells.append(value)
        elif is_pod:
            cells += _pod_cells(obj)
        job_wide: list[Any] = []
        if is_job and not printer:
            job_cells = _job_cells(obj, now)
            cells += job_cells[:3]
            job_wide = job_cells[3:]
        if not has_age:
            cells.append(age(meta.get("creationTimestamp"), now))
        cells += job_wide
        if include_object == "None":
            row_obj: Any = None
        elif include_object == "Object":
            row_obj = obj
        else:
            row_obj = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
            }
        rows.append({"cells": cells, "object": row_obj})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    }
