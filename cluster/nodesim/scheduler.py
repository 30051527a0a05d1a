"""The simulated scheduler: binds pending pods to simulated nodes with enough free capacity.

Pods whose ``spec.schedulerName`` is one of ``NodeSimOptions.scheduler_names``, with no
``spec.nodeName`` and no deletionTimestamp, enter the *active* queue (FIFO, deduplicated). One loop
decides for one pod at a time against ``NodeCapacity`` (no API call, no scan of pods), *assumes*
the pod onto the chosen node (its resources are held at once) and hands the write to a bounded set
of binders: ``POST pods/{name}/binding``, or ``PATCH spec.nodeName`` when the server has no binding
subresource. Pods that fit nowhere get ``PodScheduled=False, reason Unschedulable`` with kube's
message and wait in the *unschedulable* set until capacity frees (a pod on a node finished or went
away, or a node appeared), as kube's ``MoveAllToActiveQueue`` does.

Waiting pods are filed by *shape* (their requests and node selector), oldest first. When capacity
frees, each shape is tried from its oldest pod and only until one of its pods fits nowhere: the
pods behind it, asking for the same, would not fit either. A pod's requests are parsed once, when
first decided. So a cluster holding thousands of waiting pods spends a few fits per freed pod, not
one per waiting pod (that retry of every waiting pod on every release, and the quantity parsing
in it, was 90 % of the embedded server's CPU with 60,000 pods waiting for 2,560 places).
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
from .quantity import Resources, pod_requests

__all__ = ["TERMINAL_PHASES", "Scheduler"]

_Shape = tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]
"""What a pod asks of a node: its requests and its node selector, sorted. Pods of one shape fit
on the same nodes."""

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
        # Pods waiting for capacity to free, by shape, oldest first: shape -> {key: None}.
        # Invariant: a key is in at most one group, the one ``_waiting_shape`` names; no group
        # is empty.
        self._waiting: dict[_Shape, dict[str, None]] = {}
        self._waiting_shape: dict[str, _Shape] = {}
        # key -> (uid, requests, shape) of a pod decided once and not bound yet: requests are
        # parsed once per pod, not once per attempt.
        self._decided: dict[str, tuple[str, Resources, _Shape]] = {}
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
            self._unfile(key)
            decided = self._decided.pop(key, None)
            if phase in TERMINAL_PHASES or node not in self.capacity:
                self._released(key)
            elif self.capacity.holder(key) != node:
                try:
                    uid = pod["metadata"].get("uid", "")
                    requests = decided[1] if decided and decided[0] == uid else pod_requests(pod)
                    self.capacity.hold(key, node, requests)
                except ValueError as e:
                    log.warning("pod %s on %s: %s", key, node, e)
            return
        if key not in self._binding:
            self._released(key)
        if self.wants(pod) and key not in self._waiting_shape:
            self._enqueue(key)

    def forget(self, key: str) -> None:
        """The pod is gone."""
        self._binding.discard(key)
        self._unfile(key)
        self._decided.pop(key, None)
        self._released(key)

    @property
    def waiting(self) -> int:
        """Pods waiting for capacity to free (for tests and progress)."""
        return len(self._waiting_shape)

    def _file(self, key: str, shape: _Shape) -> None:
        """File ``key`` as waiting under ``shape``; one filed there already keeps its place."""
        if self._waiting_shape.get(key) == shape:
            return
        self._unfile(key)
        self._waiting.setdefault(shape, {})[key] = None
        self._waiting_shape[key] = shape

    def _unfile(self, key: str) -> None:
        shape = self._waiting_shape.pop(key, None)
        if shape is not None:
            group = self._waiting[shape]
            del group[key]
            if not group:
                del self._waiting[shape]

    def _released(self, key: str) -> None:
        if self.capacity.release(key):
            self._capacity_freed()

    def _capacity_freed(self) -> None:
        if self._waiting:
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
                    self._retry_waiting()
                while self._active:
                    if self._flush:  # capacity freed meanwhile: older waiters go first
                        self._flush = False
                        self._retry_waiting()
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

    def _retry_waiting(self) -> None:
        """Capacity freed: each shape's waiting pods, oldest first, until one fits nowhere."""
        for shape in list(self._waiting):
            while (group := self._waiting.get(shape)) is not None:
                key = next(iter(group))
                if self._schedule_one(key) is False and self._waiting_shape.get(key) == shape:
                    break  # it keeps its place; the pods behind it ask for the same

    def _schedule_one(self, key: str) -> bool | None:
        """Decide for one pod: True bound (assumed), False waiting for capacity, None nothing to
        decide (gone, bound, being bound). Only a pod that waits stays filed as waiting."""
        ns, name = split_key(key)
        pod = self._pods.get(ns, name)
        if pod is None or not self.wants(pod) or key in self._binding:
            self._unfile(key)
            return None
        uid = pod["metadata"].get("uid", "")
        decided = self._decided.get(key)
        if decided is None or decided[0] != uid:
            try:
                requests = pod_requests(pod)
            except ValueError as e:
                self._mark_unschedulable(
                    pod, f"0/{len(self.capacity.node_names)} nodes are available: {e}.", None
                )
                return False
            selector = (pod.get("spec") or {}).get("nodeSelector") or {}
            shape: _Shape = (
                tuple(sorted(requests.items())),
                tuple(sorted((str(k), str(v)) for k, v in selector.items())),
            )
            decided = self._decided[key] = (uid, requests, shape)
        _, requests, shape = decided
        fit = self.capacity.fit(requests, dict(shape[1]) or None)
        if fit.node is None:
            self._mark_unschedulable(pod, fit.message, shape)
            return False
        self._unfile(key)
        self._decided.pop(key, None)
        self.capacity.hold(key, fit.node, requests)
        self._binding.add(key)
        self._spawn(self._bind(pod, fit.node))
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_unschedulable(
        self, pod: Mapping[str, Any], message: str, shape: _Shape | None
    ) -> None:
        """File the pod as waiting (a malformed one, ``shape`` None, under its own shape: its
        requests cannot be read, so only a change to the pod brings it back) and say why."""
        key = _pod_key(pod)
        self._file(key, shape if shape is not None else ((("", 0),), (("key", key),)))
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
