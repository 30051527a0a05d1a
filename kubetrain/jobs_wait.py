"""Waiting for a job's state, with one progress line per change: ``jobs wait`` and ``jobs submit
--wait``.

Why polling GETs rather than a watch: a script waits on one job with the user's kubeconfig, which
may allow ``get`` and not ``watch``; a GET a second is nothing to an API server, and a lost
connection costs one poll, not a resumed watch. The progress goes to stderr, one line per change
of the state or of the pods ready (``  12.3s PyTorchJob mnist: Running (3/3 pods ready)``), never
a spinner: it reads the same in a terminal, a CI log and a pipeline step's log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TextIO

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import PODS
from kubetrain.jobs_ref import (
    EXIT_FINISHED_OTHERWISE,
    EXIT_NOT_FOUND,
    EXIT_REACHED,
    EXIT_TIMED_OUT,
    JobRef,
    fetch_job,
)
from kubetrain.reconcilers.jobview import FINISHED, job_state, pod_selector, replicas

__all__ = ["WANTED_STATES", "pods_ready", "progress_line", "reached", "wait_for"]

#: What ``--for`` accepts.
WANTED_STATES = ("Succeeded", "Failed", "Running")


def reached(state: str, wanted: str) -> bool:
    """Whether ``state`` is what the caller waits for (a job that already succeeded has run)."""
    return state == wanted or (wanted == "Running" and state == "Succeeded")


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def pods_ready(client: ApiClient, ref: JobRef, job: dict[str, Any]) -> tuple[int, int]:
    """(pods of the job that are Ready, pods the job asks for)."""
    pods = await client.list_all(
        PODS, ref.namespace, label_selector=pod_selector(ref.kind, ref.name)
    )
    return sum(1 for p in pods if _is_ready(p)), replicas(ref.kind, job)


def progress_line(ref: JobRef, state: str, ready: int | None, total: int | None) -> str:
    """``PyTorchJob mnist: Running (3/3 pods ready)``; a finished job shows no pod count."""
    text = f"{ref.kind} {ref.name}: {state}"
    if ready is not None and total is not None and state not in FINISHED:
        text += f" ({ready}/{total} pods ready)"
    return text


async def wait_for(
    client: ApiClient,
    ref: JobRef,
    *,
    wanted: str,
    timeout: float | None,
    err: TextIO,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Poll the job until it reaches ``wanted`` (exit 0), finishes otherwise (1), ``timeout``
    seconds pass (2; None waits for ever) or it is not there (3), printing each change on
    ``err``."""
    start = clock()
    deadline = None if timeout is None else start + timeout
    shown = ""
    while True:
        job = await fetch_job(client, ref)
        if job is None:
            print(f"{ref.kind} {ref.namespace}/{ref.name} not found", file=err, flush=True)
            return EXIT_NOT_FOUND
        state = job_state(ref.kind, job)
        ready, total = (None, None) if state in FINISHED else await pods_ready(client, ref, job)
        line = progress_line(ref, state, ready, total)
        if line != shown:
            print(f"{clock() - start:6.1f}s {line}", file=err, flush=True)
            shown = line
        if reached(state, wanted):
            return EXIT_REACHED
        if state in FINISHED:
            return EXIT_FINISHED_OTHERWISE
        if deadline is not None and clock() >= deadline:
            print(f"timed out after {timeout:g} s waiting for {wanted}", file=err, flush=True)
            return EXIT_TIMED_OUT
        left = interval if deadline is None else max(0.0, deadline - clock())
        await asyncio.sleep(min(interval, left))
