"""``kubetrain jobs logs``: the logs of a job's pods, read through the API server's pod log
endpoint (``/api/v1/namespaces/NS/pods/POD/log``) with the user's kubeconfig.

Why not ``kubectl logs -l``: the user would have to know each kind's pod labels (a v1 job's
``training.kubeflow.org/job-name``, a TrainJob's JobSet labels) and which pods are which replica;
here ``--replica worker-1`` names one pod, ``--replica worker`` a replica type. Several pods or
containers: each line is prefixed ``[pod/container]`` as ``kubectl logs --prefix`` does. With
``-f`` every pod's stream is followed at once and pods that appear later (a job just submitted, a
restarted pod) are picked up, until the job has finished and every stream has ended (or the
command is interrupted). A pod that has not started is waited for with ``-f``, else named on
stderr.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, TextIO

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import PODS
from kubetrain.informers.transport import ApiStatusError
from kubetrain.jobs_ref import EXIT_INVALID, EXIT_NOT_FOUND, JobRef, UsageProblem, fetch_job
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.jobview import (
    FINISHED,
    TRAINJOB,
    job_state,
    pod_replica,
    pod_selector,
    replicas,
)

__all__ = ["LogOptions", "ReplicaFilter", "follow_logs", "parse_replica", "print_logs"]

_INDEXED = re.compile(r"^(?P<type>.+)-(?P<index>\d+)$")
#: How many times a stream is reopened while its container is still being created (a real API
#: server answers 400 "waiting to start" until the kubelet started it).
_START_RETRIES = 120


@dataclass(frozen=True, slots=True)
class ReplicaFilter:
    """``--replica worker-1``: replica type ``worker`` (lower-case), index 1; None: any index."""

    rtype: str
    index: int | None


@dataclass(frozen=True, slots=True)
class LogOptions:
    """What ``jobs logs`` was asked for."""

    replica: ReplicaFilter | None = None
    container: str | None = None
    previous: bool = False
    tail: int | None = None
    interval: float = 1.0


def parse_replica(text: str | None) -> ReplicaFilter | None:
    """``worker-1`` -> (worker, 1); ``worker`` -> (worker, any); ``dataset-initializer`` keeps
    its hyphen (only a numeric suffix is an index)."""
    if not text:
        return None
    m = _INDEXED.match(text)
    if m is None:
        return ReplicaFilter(text.lower(), None)
    return ReplicaFilter(m["type"].lower(), int(m["index"]))


def _replica_types(ref: JobRef, job: dict[str, Any]) -> list[str]:
    """A v1 job's replica types, lower-case; [] for a TrainJob (its runtime names them)."""
    if ref.kind == TRAINJOB:
        return []
    specs = (job.get("spec") or {}).get(BY_KIND[ref.kind].replica_field) or {}
    return [str(t).lower() for t in specs]


def _check_replica(ref: JobRef, job: dict[str, Any], wanted: ReplicaFilter | None) -> None:
    known = _replica_types(ref, job)
    if wanted is not None and known and wanted.rtype not in known:
        raise UsageProblem(
            f"{ref.kind} {ref.name} has no replica type {wanted.rtype!r}; "
            f"use one of {', '.join(known)} (with -INDEX for one pod, e.g. {known[-1]}-0)"
        )


def _selected(ref: JobRef, pods: list[dict[str, Any]], wanted: ReplicaFilter | None) -> list[Any]:
    """The job's pods that ``wanted`` names, ordered by replica type, index and name."""
    chosen = []
    for pod in pods:
        rtype, index = pod_replica(ref.kind, pod)
        if wanted is not None and (
            rtype != wanted.rtype or (wanted.index is not None and index != wanted.index)
        ):
            continue
        chosen.append(((rtype, -1 if index is None else index, pod["metadata"]["name"]), pod))
    return [pod for _, pod in sorted(chosen, key=lambda t: t[0])]


def _containers(pod: dict[str, Any], only: str | None) -> list[str]:
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    return [n for n in names if only is None or n == only]


def _started(pod: dict[str, Any]) -> bool:
    """Whether the pod's containers may have logged: it left Pending."""
    return str((pod.get("status") or {}).get("phase") or "Pending") != "Pending"


def _prefixed(ref: JobRef, job: dict[str, Any], opts: LogOptions, containers: int) -> bool:
    """Prefix lines unless the selection is one pod (``--replica TYPE-INDEX``, or a job of one
    replica) with one container: the same rule with and without ``-f``, so a script that reads
    the lines need not guess."""
    one_pod = (opts.replica is not None and opts.replica.index is not None) or (
        replicas(ref.kind, job) == 1
    )
    return not (one_pod and containers == 1)


def _log_path(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{PODS.item_path(meta['namespace'], meta['name'])}/log"


def _query(container: str, opts: LogOptions, *, follow: bool) -> dict[str, str]:
    query = {"container": container}
    if follow:
        query["follow"] = "true"
    if opts.previous:
        query["previous"] = "true"
    if opts.tail is not None:
        query["tailLines"] = str(opts.tail)
    return query


def _write(out: TextIO, prefix: str, text: str) -> None:
    for line in text.splitlines():
        out.write(f"{prefix}{line}\n")
    out.flush()


async def _job_and_pods(
    client: ApiClient, ref: JobRef
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    job = await fetch_job(client, ref)
    if job is None:
        return None, []
    pods = await client.list_all(
        PODS, ref.namespace, label_selector=pod_selector(ref.kind, ref.name)
    )
    return job, pods


async def print_logs(
    client: ApiClient, ref: JobRef, opts: LogOptions, out: TextIO, err: TextIO
) -> int:
    """The logs so far of the selected pods, one after the other; pods not started are named on
    ``err``. 0, or 3 for a job not found or a log the API server refused."""
    job, pods = await _job_and_pods(client, ref)
    if job is None:
        print(f"{ref.kind} {ref.namespace}/{ref.name} not found", file=err)
        return EXIT_NOT_FOUND
    _check_replica(ref, job, opts.replica)
    chosen = _selected(ref, pods, opts.replica)
    if not chosen:
        which = f" matching --replica {opts.replica.rtype}" if opts.replica else ""
        print(f"{ref.kind} {ref.name} has no pods{which} yet (use -f to wait for them)", file=err)
        return 0
    rc = 0
    for pod in chosen:
        name = pod["metadata"]["name"]
        if not _started(pod):
            print(f"pod {name} has not started yet (Pending; use -f to wait for it)", file=err)
            continue
        containers = _containers(pod, opts.container)
        if not containers:
            print(f"pod {name} has no container {opts.container!r}", file=err)
            rc = EXIT_INVALID
            continue
        for container in containers:
            try:
                raw = await client.request_bytes(
                    "GET", _log_path(pod), query=_query(container, opts, follow=False)
                )
            except ApiStatusError as e:
                print(f"pod {name} container {container}: {e.message or e}", file=err)
                rc = EXIT_INVALID
                continue
            prefixed = _prefixed(ref, job, opts, len(containers)) or len(chosen) > 1
            prefix = f"[{name}/{container}] " if prefixed else ""
            _write(out, prefix, raw.decode(errors="replace"))
    return rc


@dataclass
class _Follower:
    """One ``-f`` run: the streams started so far, keyed by (pod uid, container)."""

    client: ApiClient
    ref: JobRef
    opts: LogOptions
    out: TextIO
    err: TextIO
    job: dict[str, Any]
    failed: bool = False

    def __post_init__(self) -> None:
        self.streams: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.waiting: set[str] = set()

    def start_new(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            meta = pod["metadata"]
            if not _started(pod):
                if meta["name"] not in self.waiting:
                    self.waiting.add(meta["name"])
                    print(f"waiting for pod {meta['name']} to start", file=self.err, flush=True)
                continue
            containers = _containers(pod, self.opts.container)
            for container in containers:
                prefix = _prefixed(self.ref, self.job, self.opts, len(containers))
                key = (str(meta.get("uid") or meta["name"]), container)
                if key not in self.streams:
                    self.streams[key] = asyncio.create_task(self._stream(pod, container, prefix))

    async def _stream(self, pod: dict[str, Any], container: str, prefixed: bool) -> None:
        name = pod["metadata"]["name"]
        prefix = f"[{name}/{container}] " if prefixed else ""
        query = _query(container, self.opts, follow=True)
        for _ in range(_START_RETRIES):
            try:
                async with self.client.stream_lines(
                    _log_path(pod), query=query, keep_blank=True
                ) as lines:
                    async for line in lines:
                        _write(self.out, prefix, line.decode(errors="replace"))
                return
            except ApiStatusError as e:
                if e.code == 400 and "waiting to start" in e.message:
                    await asyncio.sleep(self.opts.interval)
                    continue
                if not e.is_not_found:  # a pod deleted meanwhile has nothing more to say
                    print(f"pod {name} container {container}: {e.message or e}", file=self.err)
                    self.failed = True
                return
            except (ConnectionError, TimeoutError) as e:
                print(f"pod {name} container {container}: stream ended: {e}", file=self.err)
                return

    async def drain(self) -> None:
        if self.streams:
            await asyncio.gather(*self.streams.values())

    def cancel(self) -> None:
        for task in self.streams.values():
            task.cancel()


async def follow_logs(
    client: ApiClient,
    ref: JobRef,
    opts: LogOptions,
    out: TextIO,
    err: TextIO,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    """Stream the selected pods' logs as they come, picking up new pods, until the job has
    finished (or ``stop`` is set) and every stream has ended. 0, or 3 for a job not found or a
    stream the API server refused."""
    follower: _Follower | None = None
    try:
        while True:
            job, pods = await _job_and_pods(client, ref)
            if job is None:
                if follower is None:
                    print(f"{ref.kind} {ref.namespace}/{ref.name} not found", file=err)
                    return EXIT_NOT_FOUND
                break  # deleted while followed: the streams end with their pods
            if follower is None:
                _check_replica(ref, job, opts.replica)
                follower = _Follower(client, ref, opts, out, err, job)
            done = job_state(ref.kind, job) in FINISHED or (stop is not None and stop.is_set())
            follower.start_new(_selected(ref, pods, opts.replica))
            if done:
                break
            await _sleep_or_stop(opts.interval, stop)
        await follower.drain()
        return EXIT_INVALID if follower.failed else 0
    finally:
        if follower is not None:
            follower.cancel()


async def _sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
