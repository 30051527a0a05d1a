"""The scheduler's writes to pods: the binding, and ``PodScheduled=False`` for a pod that waits.

Why apart from the scheduler: these are API calls with no scheduling state of their own (the one
thing kept is whether the server has the ``pods/binding`` subresource); what a failed binding
means for the scheduler's books is the scheduler's business (``Scheduler._bind``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kubetrain.base.clock import Clock
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import PODS
from kubetrain.informers.transport import ApiStatusError

from .podstatus import rfc3339

__all__ = ["PodWriter"]

log = logging.getLogger(__name__.rpartition(".")[0] + ".scheduler")  # the scheduler's log


class PodWriter:
    """Binds pods and says why they wait, over ``client``; Unschedulable writes are
    fire-and-forget, bounded by ``slots``."""

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
        self._binding_supported = True
        """False once the server answered that it has no ``pods/binding``: bind by PATCH."""

    async def bind(self, ns: str, name: str, uid: str, node: str) -> None:
        """Bind pod ``ns/name`` (``uid``, "" for any) to ``node``: ``POST pods/{name}/binding``,
        or ``PATCH spec.nodeName`` when the server has no binding subresource. Raises what the
        server answers; the caller holds a slot."""
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

    def say_unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        """Write ``PodScheduled=False`` with ``message`` unless the pod says so already."""
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

        async with self._slots:
            try:
                await self._client.update_status_with_retry(
                    PODS, meta.get("namespace"), meta["name"], mutate, current=pod
                )
            except ApiStatusError as e:
                if not e.is_not_found:
                    log.warning("marking pod %s unschedulable failed: %s", meta["name"], e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("marking pod %s unschedulable failed: %s", meta["name"], e)
