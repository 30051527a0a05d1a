"""The simulated kubelets of all simulated nodes: run bound pods through their timeline.

When a pod bound to one of our nodes is first seen, the kubelet *admits* it: reads its behaviour
(``behaviour.py``), computes its whole ``timeline`` and gives it a pod IP. From then on the pod's
key sits in one ``DelayingQueue`` (a heap and a single clock timer for all pods), due when its
next stage starts; a worker then writes that stage's status in one ``PUT pods/{name}/status``
(re-read and retried on conflict) and queues the key for the following stage. Thousands of pods
cost heap entries, not tasks, and no polling.

Deletion follows a real kubelet: a pod with a deletionTimestamp has its containers stopped
(terminated with ``termination_exit_code``, phase Succeeded/Failed), then is deleted with
``gracePeriodSeconds=0`` and a uid precondition, which is what removes a bound pod on a real server
(the API server keeps it, Terminating, until then).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import split_key
from kubetrain.engine.client import ApiClient
from kubetrain.engine.delaying_queue import DelayingQueue
from kubetrain.engine.queue import QueueOptions, QueueShutDown
from kubetrain.engine.ratelimiters import ItemExponentialFailureRateLimiter
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import PODS
from kubetrain.informers.transport import ApiStatusError

from .behaviour import PodBehaviour, behaviour_of
from .logsink import LogSink
from .options import NodeSimOptions
from .podstatus import RunIdentity, render_status, terminate_status
from .scheduler import TERMINAL_PHASES
from .timeline import Stage, build_timeline

__all__ = ["Kubelet"]

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _PodRun:
    """One admitted pod. Invariant: ``written`` < len(stages); stage times are non-decreasing."""

    uid: str
    identity: RunIdentity
    behaviour: PodBehaviour
    stages: list[Stage]
    times: list[float]
    t0: float
    """Clock time of admission (stage offsets count from here)."""
    written: int = -1
    """Index of the last stage written (-1: none)."""
    logged: int = -1
    """Index of the last stage whose container starts were logged."""


@dataclass(slots=True)
class _NodeIps:
    prefix: str
    next: int = 1
    free: list[int] = field(default_factory=list)

    def take(self) -> str:
        if self.free:
            return f"{self.prefix}.{self.free.pop()}"
        n = self.next
        self.next = n % 254 + 1
        return f"{self.prefix}.{n}"


def _wall_of(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class Kubelet:
    """Runs every pod bound to one of ``node_ips``' nodes."""

    def __init__(
        self,
        client: ApiClient,
        pods: Lister,
        options: NodeSimOptions,
        *,
        host_ips: Mapping[str, str],
        pod_cidr_prefixes: Mapping[str, str],
        log_sink: LogSink | None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self._client = client
        self._pods = pods
        self._options = options
        self._host_ips = dict(host_ips)
        self._ips = {node: _NodeIps(prefix) for node, prefix in pod_cidr_prefixes.items()}
        self._logs = log_sink
        self._clock = clock
        self._queue: DelayingQueue[str] = DelayingQueue(QueueOptions(clock=self._clock))
        self._backoff: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
            base_delay=0.05, max_delay=10.0
        )
        self._runs: dict[str, _PodRun] = {}
        # key -> uid of pods whose life we finished (terminal status written): never re-admitted.
        self._done: dict[str, str] = {}
        # key -> uid of pods we deleted for good (grace 0) after their deletionTimestamp. Apart
        # from ``_done``: a pod whose last stage was written (or skipped because it was already
        # being deleted) must still be removed, or the API server keeps it Terminating.
        self._deleted: dict[str, str] = {}
        self._workers: list[asyncio.Task[None]] = []
        self.status_writes = 0
        """Status writes made so far (for tests and benchmarks)."""

    # -- informer side (synchronous) -----------------------------------------------------------

    def observe(self, key: str, pod: Mapping[str, Any]) -> None:
        """A pod was added or changed; queue it when the kubelet has something to do."""
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self._host_ips:
            if key in self._runs:
                self._queue.add(key)
            return
        uid = pod["metadata"].get("uid", "")
        run = self._runs.get(key)
        if pod["metadata"].get("deletionTimestamp"):
            if self._deleted.get(key) != uid:
                self._queue.add(key)
        elif run is None:
            if (
                self._done.get(key) != uid
                and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
            ):
                self._queue.add(key)
        elif run.uid != uid:
            self._queue.add(key)

    def forget(self, key: str) -> None:
        """The pod is gone from the server."""
        self._done.pop(key, None)
        self._deleted.pop(key, None)
        run = self._runs.pop(key, None)
        if run is not None:
            self._free_ip(run)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        for i in range(self._options.workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"nodesim kubelet {i}"))

    async def stop(self) -> None:
        self._queue.shutdown()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()

    @property
    def running(self) -> int:
        """Pods admitted and not finished."""
        return len(self._runs)

    async def _work(self) -> None:
        queue = self._queue
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            try:
                await self._sync(key)
                self._backoff.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                delay = self._backoff.when(key)
                level = (
                    logging.DEBUG
                    if isinstance(e, ApiStatusError | ConnectionError)
                    else logging.ERROR
                )
                log.log(
                    level,
                    "pod %s: sync failed (retry in %.2fs): %s",
                    key,
                    delay,
                    e,
                    exc_info=level == logging.ERROR,
                )
                queue.add_after(key, delay)
            finally:
                queue.done(key)

    # -- one pod -------------------------------------------------------------------------------

    async def _sync(self, key: str) -> None:
        ns, name = split_key(key)
        pod = self._pods.get(ns, name)
        run = self._runs.get(key)
        if pod is None:
            return  # deleted; ``forget`` cleans up
        meta = pod["metadata"]
        node = (pod.get("spec") or {}).get("nodeName")
        if run is not None and (run.uid != meta.get("uid") or node not in self._host_ips):
            self.forget(key)
            run = None
        if node not in self._host_ips:
            return
        if meta.get("deletionTimestamp"):
            if self._deleted.get(key) != meta.get("uid"):
                await self._terminate(key, pod)
            return
        if run is None:
            if self._done.get(key) == meta.get("uid"):
                return
            if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
                self._done[key] = meta.get("uid", "")
                return
            run = self._admit(pod, node)
            self._runs[key] = run
        now = self._clock.monotonic() - run.t0
        index = bisect.bisect_right(run.times, now) - 1
        if index > run.written:
            stage = run.stages[index]
            await self._deliver_logs(pod, run, index)
            await self._write_stage(pod, run, stage)
            run.written = index
            if stage.phase in TERMINAL_PHASES:
                self._done[key] = run.uid
                self._runs.pop(key, None)
                self._free_ip(run)
                return
        if index + 1 < len(run.stages):
            self._queue.add_after(key, run.times[index + 1] - now)

    def _admit(self, pod: Mapping[str, Any], node: str) -> _PodRun:
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        behaviour = behaviour_of(pod, self._options)
        stages = build_timeline(
            behaviour,
            restart_policy=spec.get("restartPolicy", "Always"),
            init_run_seconds=self._options.init_run_seconds,
            restart_delay_seconds=self._options.restart_delay_seconds,
        )
        now_wall, now = self._clock.utcnow().timestamp(), self._clock.monotonic()
        started_wall = _wall_of(status.get("startTime", "")) if status.get("startTime") else None
        resumed = started_wall is not None and status.get("podIP") is not None
        if started_wall is None or not resumed:
            started_wall = now_wall
        t0 = now - (now_wall - started_wall)
        pod_ip = status.get("podIP") if resumed else self._ips[node].take()
        init = spec.get("initContainers") or []
        main = spec.get("containers") or []
        identity = RunIdentity(
            uid=pod["metadata"].get("uid", ""),
            started_wall=started_wall,
            host_ip=self._host_ips[node],
            pod_ip=str(pod_ip),
            init_names=tuple(str(c.get("name", "")) for c in init),
            init_images=tuple(str(c.get("image", "")) for c in init),
            main_names=tuple(str(c.get("name", "")) for c in main),
            main_images=tuple(str(c.get("image", "")) for c in main),
        )
        times = [s.at for s in stages]
        run = _PodRun(identity.uid, identity, behaviour, stages, times, t0)
        if resumed:  # a simulator restart: do not log again what already ran
            run.logged = bisect.bisect_right(times, now - t0) - 1
        return run

    def _free_ip(self, run: _PodRun) -> None:
        prefix, _, last = run.identity.pod_ip.rpartition(".")
        for ips in self._ips.values():
            if ips.prefix == prefix and last.isdigit():
                ips.free.append(int(last))
                return

    async def _write_stage(self, pod: Mapping[str, Any], run: _PodRun, stage: Stage) -> None:
        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            if obj["metadata"].get("uid") != run.uid or obj["metadata"].get("deletionTimestamp"):
                return None
            obj["status"] = render_status(run.identity, stage, obj.get("status") or {})
            return obj

        meta = pod["metadata"]
        written = await self._client.update_status_with_retry(
            PODS, meta.get("namespace"), meta["name"], mutate, current=pod
        )
        if written is not None:
            self.status_writes += 1

    async def _deliver_logs(self, pod: Mapping[str, Any], run: _PodRun, index: int) -> None:
        if self._logs is None:
            return
        meta = pod["metadata"]
        b = run.behaviour
        for i in range(run.logged + 1, index + 1):
            stage = run.stages[i]
            for k in stage.started:
                container = run.identity.main_names[k]
                restart = stage.main[k].restart_count
                if b.log_text is not None:
                    text = b.log_text
                else:
                    text = "".join(
                        f"{meta['name']} {container} run {restart + 1}: line {n + 1}/{b.log_lines}\n"
                        for n in range(b.log_lines)
                    )
                if text:
                    await self._logs.write(meta.get("namespace", ""), meta["name"], container, text)
        run.logged = index

    async def _terminate(self, key: str, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        ns, name, uid = meta.get("namespace"), meta["name"], meta.get("uid")
        phase = (pod.get("status") or {}).get("phase")
        if phase not in TERMINAL_PHASES:

            def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
                if obj["metadata"].get("uid") != uid:
                    return None
                if (obj.get("status") or {}).get("phase") in TERMINAL_PHASES:
                    return None
                obj["status"] = terminate_status(
                    obj.get("status") or {},
                    exit_code=self._options.termination_exit_code,
                    now_wall=self._clock.utcnow().timestamp(),
                )
                return obj

            try:
                if await self._client.update_status_with_retry(PODS, ns, name, mutate, current=pod):
                    self.status_writes += 1
            except ApiStatusError as e:
                if e.is_not_found:
                    self.forget(key)
                    return
                raise
        try:
            await self._client.delete(PODS, ns, name, grace_period_seconds=0, uid=uid)
        except ApiStatusError as e:
            if not (e.is_not_found or e.is_conflict):
                raise
        self._done[key] = self._deleted[key] = uid or ""
        run = self._runs.pop(key, None)
        if run is not None:
            self._free_ip(run)
