"""The ``raw`` baseline: the physical floor of what the API server allows for a PyTorchJob.

A bare client (kubetrain's ``ApiClient``, no client-side rate limit), one watch on the jobs and
one on the pods of one namespace, no informers, no queue, no cache beyond what it must remember:
for each new job it creates the pods and services, then writes the conditions Created, Running
and Succeeded once each (a status merge patch each), and deletes the job when its
``ttlSecondsAfterFinished`` is due. Nothing else is written.

Run: ``python -m kubetrain.bench.baselines.raw --kubeconfig FILE --namespace NS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import PODS, SERVICES, ResourceRef, kubeflow
from kubetrain.informers.transport import ApiStatusError

from ..measure import parse_time
from .children import JOB_NAME_LABEL, children_of, condition, now_rfc3339

__all__ = ["RawOperator", "main"]

OPERATOR_NAME = "raw-baseline"
JOBS = kubeflow("PyTorchJob")
Obj = dict[str, Any]


@dataclass
class _Job:
    """What the raw operator remembers of one job. Invariant: ``written`` only grows, in the
    order Created, Running, Succeeded."""

    name: str
    uid: str
    expected_pods: int
    ttl: float | None
    phases: dict[str, str] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    conditions: list[Obj] = field(default_factory=list)
    children_created: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RawOperator:
    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.jobs: dict[str, _Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        await asyncio.gather(
            _watch(self.client, JOBS, self.namespace, None, self.on_job),
            _watch(
                self.client,
                PODS,
                self.namespace,
                f"training.kubeflow.org/operator-name={OPERATOR_NAME}",
                self.on_pod,
            ),
        )

    # -- events -------------------------------------------------------------------------------

    def on_job(self, event: str, job: Obj) -> None:
        meta = job["metadata"]
        name = meta["name"]
        if event == "DELETED":
            self.jobs.pop(name, None)
            return
        state = self.jobs.get(name)
        if state is not None and state.uid == meta["uid"]:
            return
        specs = job["spec"]["pytorchReplicaSpecs"]
        ttl = (job["spec"].get("runPolicy") or {}).get("ttlSecondsAfterFinished")
        state = _Job(
            name=name,
            uid=meta["uid"],
            expected_pods=sum(int(s.get("replicas", 1)) for s in specs.values()),
            ttl=None if ttl is None else float(ttl),
        )
        status = job.get("status") or {}
        state.conditions = list(status.get("conditions") or [])
        state.written = [c["type"] for c in state.conditions if c.get("status") == "True"]
        self.jobs[name] = state
        if "Created" in state.written:  # seen again after a restart: its children exist
            state.children_created = True
            if "Succeeded" in state.written:
                self._schedule_ttl(state, parse_time(status.get("completionTime")))
            return
        self._spawn(self._create_children(job, state))

    def on_pod(self, event: str, pod: Obj) -> None:
        meta = pod["metadata"]
        state = self.jobs.get(meta["labels"].get(JOB_NAME_LABEL, ""))
        if state is None or event == "DELETED":
            return
        state.phases[meta["name"]] = (pod.get("status") or {}).get("phase", "Pending")
        self._spawn(self._advance(state))

    # -- writes -------------------------------------------------------------------------------

    async def _create_children(self, job: Obj, state: _Job) -> None:
        pods, services = children_of(job, operator_name=OPERATOR_NAME)
        await asyncio.gather(
            *(self._create(PODS, p) for p in pods), *(self._create(SERVICES, s) for s in services)
        )
        state.children_created = True
        await self._advance(state)

    async def _create(self, ref: ResourceRef, obj: Obj) -> None:
        await self.client.create_if_absent(ref, obj)

    async def _advance(self, state: _Job) -> None:
        """Write whichever of Created, Running, Succeeded is due and not yet written."""
        async with state.lock:
            if not state.children_created or "Succeeded" in state.written:
                return
            phases = list(state.phases.values())
            complete = len(phases) >= state.expected_pods
            due = ["Created"]
            if complete and all(p in ("Running", "Succeeded") for p in phases):
                due.append("Running")
            if complete and all(p == "Succeeded" for p in phases):
                due.append("Succeeded")
            for ctype in due:
                if ctype not in state.written and self.jobs.get(state.name) is state:
                    await self._write_condition(state, ctype)

    async def _write_condition(self, state: _Job, ctype: str) -> None:
        status: Obj = {}
        if ctype == "Succeeded":
            for c in state.conditions:
                if c["type"] == "Running":
                    c["status"] = "False"
            status["completionTime"] = now_rfc3339()
        elif ctype == "Running":
            status["startTime"] = now_rfc3339()
        reason = f"PyTorchJob{ctype}"
        state.conditions.append(condition(ctype, reason, f"PyTorchJob {state.name} is {ctype}."))
        status["conditions"] = state.conditions
        try:
            await self.client.patch(
                JOBS, self.namespace, state.name, {"status": status}, subresource="status"
            )
        except ApiStatusError as exc:
            if exc.is_not_found:
                return
            raise
        state.written.append(ctype)
        if ctype == "Succeeded":
            self._schedule_ttl(state, parse_time(status["completionTime"]))

    def _schedule_ttl(self, state: _Job, completion: float | None) -> None:
        if state.ttl is None or completion is None:
            return
        delay = max(0.0, completion + state.ttl - time.time())
        asyncio.get_running_loop().call_later(delay, lambda: self._spawn(self._delete_job(state)))

    async def _delete_job(self, state: _Job) -> None:
        try:
            await self.client.delete(
                JOBS, self.namespace, state.name, propagation_policy="Background", uid=state.uid
            )
        except ApiStatusError as exc:
            if not (exc.is_not_found or exc.is_conflict):
                raise


async def _watch(
    client: ApiClient,
    ref: ResourceRef,
    namespace: str,
    selector: str | None,
    handle: Callable[[str, Obj], None],
) -> None:
    """List then watch forever, relisting after a 410 or an error; ``handle(type, obj)``."""
    rv: str | None = None
    while True:
        try:
            if rv is None:
                page = await client.list(ref, namespace, label_selector=selector)
                for item in page.get("items") or []:
                    handle("ADDED", item)
                rv = page["metadata"]["resourceVersion"]
            query = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            if selector:
                query["labelSelector"] = selector
            async with client.stream_lines(ref.collection_path(namespace), query=query) as lines:
                async for line in lines:
                    event = orjson.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        rv = None
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        handle(event["type"], obj)
        except (ConnectionError, TimeoutError, ApiStatusError):
            rv = None
            await asyncio.sleep(0.5)


async def _main(args: argparse.Namespace) -> int:
    config = await load_kubeconfig(args.kubeconfig)
    # The bare client: no client-side limit at all, the floor kubetrain is compared with.
    options = ClientOptions(
        qps=0, adaptive=None, registry=CollectorRegistry(), user_agent="kubetrain-bench-raw"
    )
    async with ApiClient(config, options) as client:
        operator = RawOperator(client, args.namespace)
        task = asyncio.create_task(operator.run())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"raw baseline watching namespace {args.namespace}", flush=True)
        await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kubetrain.bench.baselines.raw")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", required=True)
    return asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
