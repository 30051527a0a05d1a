"""The API writes of a preemption, as kube-scheduler makes them (``pkg/scheduler/framework/
preemption/preemption.go`` ``prepareCandidate``, kube >= 1.26): each victim gets the condition
``DisruptionTarget`` (True, reason ``PreemptionByScheduler``, message ``<schedulerName>:
preempting to accommodate a higher priority pod``), then is deleted (uid precondition: a pod of
the same name made since is not touched), and an Event ``Preempted`` on the victim names the
preemptor (``Preempted by <namespace>/<name> on node <node>``); the preemptor gets
``status.nominatedNodeName``.

Why apart from the scheduler: these are fire-and-forget writes, bounded by the scheduler's
binding slots; the scheduler has already moved the victims' room to the preemptor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kubetrain.base.clock import Clock
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import EVENTS, PODS
from kubetrain.informers.transport import ApiStatusError

from .podstatus import rfc3339

__all__ = ["DISRUPTION_TARGET", "PREEMPTION_BY_SCHEDULER", "Evictor"]

log = logging.getLogger(__name__)

DISRUPTION_TARGET = "DisruptionTarget"
PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"


class Evictor:
    """Evicts victims and nominates preemptors over ``client``."""

    def __init__(
        self,
        client: ApiClient,
        *,
        slots: asyncio.Semaphore,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        clock: Clock,
    ) -> None:
        self._client = client
        self._slots = slots
        self._spawn = spawn
        self._clock = clock
        self.evicted = 0
        """Victims deleted (for tests)."""

    def evict(
        self,
        victim: Mapping[str, Any],
        preemptor: Mapping[str, Any],
        *,
        gang: bool,
        gone: Callable[[str], None],
    ) -> None:
        """Mark ``victim`` and delete it; ``gone(key)`` when that failed for good (the pod will
        not go away by itself)."""
        self._spawn(self._evict(victim, preemptor, gang=gang, gone=gone))

    def nominate(self, pod: Mapping[str, Any], node: str) -> None:
        """Write ``status.nominatedNodeName`` on ``pod`` unless it says so already."""
        if (pod.get("status") or {}).get("nominatedNodeName") != node:
            self._spawn(self._nominate(pod, node))

    async def _evict(
        self,
        victim: Mapping[str, Any],
        preemptor: Mapping[str, Any],
        *,
        gang: bool,
        gone: Callable[[str], None],
    ) -> None:
        meta = victim["metadata"]
        ns, name, uid = meta.get("namespace", ""), meta["name"], meta.get("uid", "")
        scheduler = (preemptor.get("spec") or {}).get("schedulerName") or "default-scheduler"
        what = "pod group" if gang else "pod"
        condition = {
            "type": DISRUPTION_TARGET,
            "status": "True",
            "reason": PREEMPTION_BY_SCHEDULER,
            "message": f"{scheduler}: preempting to accommodate a higher priority {what}",
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(self._clock.utcnow().timestamp()),
        }

        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            if obj["metadata"].get("uid") != uid:
                return None
            status = obj.setdefault("status", {})
            conds = [
                c for c in status.get("conditions") or [] if c.get("type") != DISRUPTION_TARGET
            ]
            conds.append(condition)
            status["conditions"] = conds
            return obj

        async with self._slots:
            try:
                await self._client.update_status_with_retry(PODS, ns, name, mutate, current=victim)
                await self._client.delete(PODS, ns, name, uid=uid)
                self.evicted += 1
            except ApiStatusError as e:
                if not e.is_not_found and not e.is_conflict:
                    log.warning("preempting pod %s/%s failed: %s", ns, name, e)
                    gone(f"{ns}/{name}")
                return
            except (ConnectionError, TimeoutError) as e:
                log.warning("preempting pod %s/%s failed: %s", ns, name, e)
                gone(f"{ns}/{name}")
                return
            await self._event(victim, preemptor)

    async def _event(self, victim: Mapping[str, Any], preemptor: Mapping[str, Any]) -> None:
        meta, pmeta = victim["metadata"], preemptor["metadata"]
        ns = meta.get("namespace", "")
        node = (victim.get("spec") or {}).get("nodeName") or ""
        now = rfc3339(self._clock.utcnow().timestamp())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": ns},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": ns,
                "name": meta["name"],
                "uid": meta.get("uid", ""),
            },
            "reason": "Preempted",
            "message": f"Preempted by {pmeta.get('namespace', '')}/{pmeta['name']} on node {node}",
            "type": "Normal",
            "source": {"component": "default-scheduler"},
            "reportingComponent": "default-scheduler",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._client.create(EVENTS, event, namespace=ns)
        except (ApiStatusError, ConnectionError, TimeoutError) as e:
            log.debug("recording the preemption of %s/%s failed: %s", ns, meta["name"], e)

    async def _nominate(self, pod: Mapping[str, Any], node: str) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid")

        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            if obj["metadata"].get("uid") != uid or (obj.get("spec") or {}).get("nodeName"):
                return None
            obj.setdefault("status", {})["nominatedNodeName"] = node
            return obj

        async with self._slots:
            try:
                await self._client.update_status_with_retry(
                    PODS, meta.get("namespace"), meta["name"], mutate, current=pod
                )
            except (ApiStatusError, ConnectionError, TimeoutError) as e:
                log.debug("nominating pod %s to %s failed: %s", meta["name"], node, e)
