"""The simulated scheduler: binds pending pods to simulated nodes with enough free capacity.

Pods whose ``spec.schedulerName`` is one of ``NodeSimOptions.scheduler_names``, with no
``spec.nodeName`` and no deletionTimestamp, enter the *active* queue (FIFO, deduplicated). One loop
decides for one pod at a time against ``NodeCapacity`` (no API call, no scan of pods), *assumes*
the pod onto the chosen node (its resources are held at once) and hands the write to a bounded set
of binders: ``POST pods/{name}/binding``, or ``PATCH spec.nodeName`` when the server has no binding
subresource. Pods that fit nowhere get ``PodScheduled=False, reason Unschedulable`` with kube's
message and wait in the *unschedulable* set until capacity frees (a pod on a node finished or went
away, or a node appeared), as kube's ``MoveAllToActiveQueue`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import split_key
from kubetrain.engine.client import ApiClient
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import PODS
from kubetrain.informers.transport import ApiStatusError

from .capacity import NodeCapacity
from .podstatus import rfc3339
from .quantity import pod_requests

__all__ = ["TERMINAL_PHASES", "Scheduler"]

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_RETRY_SECONDS = 1.0

log = logging.getLogger(__name__)


class Scheduler:
    """Active queue, unschedulable set and binders over one ``NodeCapacity``."""

    def __init__(
        self,
        client: ApiClient,
        pods: Lister,
        capacity: NodeCapacity,
        *,
        scheduler_names: frozenset[str],
        bind_concurrency: int,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self._client = client
        self._clock = clock
        self._pods = pods
        self.capacity = capacity
        self._names = scheduler_names
        self._active: deque[str] = deque()
        self._queued: set[str] = set()
        # key -> the Unschedulable message last decided for it (waits for capacity to free).
        self._unschedulable: dict[str, str] = {}
        # Keys assumed onto a node whose binding is in flight. Invariant: each holds capacity.
        self._binding: set[str] = set()
        self._wake = asyncio.Event()
        self._flush = False
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._max_in_flight = 4 * bind_concurrency + 64
        self._tasks: set[asyncio.Task[None]] = set()
        self._binding_supported = True
        self.bound = 0
        """Pods bound so far (for tests and progress)."""

    # -- informer side (synchronous, never awaits) ---------------------------------------------

    def wants(self, pod: Mapping[str, Any]) -> bool:
        """True when this scheduler must place ``pod``."""
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and spec.get("schedulerName", "default-scheduler") in self._names
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
        )

    def observe(self, pod: Mapping[str, Any]) -> None:
        """A pod was added or changed: account its capacity, queue it if it needs a node."""
        key = _pod_key(pod)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node:
            self._binding.discard(key)
            self._unschedulable.pop(key, None)
            if phase in TERMINAL_PHASES or node not in self.capacity:
                self._released(key)
            elif self.capacity.holder(key) != node:
                try:
                    self.capacity.hold(key, node, pod_requests(pod))
                except ValueError as e:
                    log.warning("pod %s on %s: %s", key, node, e)
            return
        if key not in self._binding:
            self._released(key)
        if self.wants(pod) and key not in self._unschedulable:
            self._enqueue(key)

    def forget(self, key: str) -> None:
        """The pod is gone."""
        self._binding.discard(key)
        self._unschedulable.pop(key, None)
        self._released(key)

    def _released(self, key: str) -> None:
        if self.capacity.release(key):
            self._capacity_freed()

    def _capacity_freed(self) -> None:
        if self._unschedulable:
            self._flush = True
            self._wake.set()

    def _enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._active.append(key)
            self._wake.set()

    # -- the scheduling loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Decide for queued pods until cancelled."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._flush:
                    self._flush = False
                    for key in self._unschedulable:
                        self._enqueue(key)
                    self._unschedulable.clear()
                while self._active:
                    key = self._active.popleft()
                    self._queued.discard(key)
                    self._schedule_one(key)
                    if len(self._tasks) > self._max_in_flight:
                        await asyncio.sleep(0)  # let binders drain a long burst
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _schedule_one(self, key: str) -> None:
        ns, name = split_key(key)
        pod = self._pods.get(ns, name)
        if pod is None or not self.wants(pod) or key in self._binding:
            return
        try:
            requests = pod_requests(pod)
        except ValueError as e:
            self._mark_unschedulable(
                pod, f"0/{len(self.capacity.node_names)} nodes are available: {e}."
            )
            return
        fit = self.capacity.fit(requests, (pod.get("spec") or {}).get("nodeSelector"))
        if fit.node is None:
            self._mark_unschedulable(pod, fit.message)
            return
        self.capacity.hold(key, fit.node, requests)
        self._binding.add(key)
        self._spawn(self._bind(pod, fit.node))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        key = _pod_key(pod)
        self._unschedulable[key] = message
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("message") == message
            ):
                return  # already says so: no write
        self._spawn(self._write_unschedulable(pod, message))

    async def _write_unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        meta = pod["metadata"]

        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            if (obj.get("spec") or {}).get("nodeName") or obj["metadata"].get("uid") != meta.get(
                "uid"
            ):
                return None
            status = obj.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(self._clock.utcnow().timestamp()),
                }
            )
            status["conditions"] = conds
            status.setdefault("phase", "Pending")
            return obj

        async with self._bind_slots:
            try:
                await self._client.update_status_with_retry(
                    PODS, meta.get("namespace"), meta["name"], mutate, current=pod
                )
            except ApiStatusError as e:
                if not e.is_not_found:
                    log.warning("marking pod %s unschedulable failed: %s", meta["name"], e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("marking pod %s unschedulable failed: %s", meta["name"], e)

    async def _bind(self, pod: Mapping[str, Any], node: str) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        key = f"{ns}/{name}"
        async with self._bind_slots:
            try:
                await self._write_binding(ns, name, meta.get("uid", ""), node)
                self.bound += 1
                return
            except ApiStatusError as e:
                if e.is_not_found:
                    self.forget(key)
                    return
                if e.is_conflict:
                    # Already bound elsewhere, or being deleted: the informer tells the truth.
                    self._binding.discard(key)
                    current = self._pods.get(ns, name)
                    if current is not None and (current.get("spec") or {}).get("nodeName"):
                        self.observe(current)
                    else:
                        self._released(key)
                    return
                log.warning("binding pod %s to %s failed: %s", key, node, e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("binding pod %s to %s failed: %s", key, node, e)
        # Transient failure: give the capacity back and try again later.
        self._binding.discard(key)
        self._released(key)
        self._clock.call_at(self._clock.monotonic() + _RETRY_SECONDS, lambda: self._enqueue(key))

    async def _write_binding(self, ns: str, name: str, uid: str, node: str) -> None:
        if self._binding_supported:
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid}
                if uid
                else {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            try:
                await self._client.request_json(
                    "POST", PODS.item_path(ns, name, "binding"), body=body
                )
                return
            except ApiStatusError as e:
                # A server without the subresource answers 404 naming no pod, or 405.
                if not (e.code == 405 or (e.code == 404 and name not in e.message)):
                    raise
                self._binding_supported = False
                log.info("the API server has no pods/binding (%s); binding by PATCH", e)
        await self._client.patch(PODS, ns, name, {"spec": {"nodeName": node}})


def _pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"
