"""Helpers for the job e2e tests: an embedded cluster with simulated nodes, the CRDs, the
operator running in-process, job manifests and polling.

One cluster per test module (module-scoped fixture); the operator can be stopped and started
again on it (restart tests). Tests use distinct namespaces so they do not see each other's jobs.

``open_env(apiserver="real")`` (the suite's ``--apiserver=real``, see
``conformance/apiserver_switch.py``) runs the same tests against a real control plane
(``conformance.controlplane.RealControlPlane``, one per module) with the node simulator as the
scheduler and kubelets; only tests marked ``http_api`` run there (the switch skips the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.bench.apimetrics import RequestCounts, parse_request_counts
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster.nodesim.simulator import NodeSimulator
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import (
    EVENTS,
    PODS,
    PRIORITYCLASSES,
    SERVICES,
    ResourceRef,
    kubeflow,
)
from kubetrain.informers.transport import ApiStatusError
from kubetrain.operator import Operator, OperatorOptions
from kubetrain.reconcilers.api.crds import all_crds

Obj = dict[str, Any]

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
NAMESPACES = ResourceRef("", "v1", "namespaces", False, "Namespace")
SERVICEACCOUNTS = ResourceRef("", "v1", "serviceaccounts", True, "ServiceAccount")
SIM = "sim.kubetrain.dev/"


@dataclass
class RunningOperator:
    operator: Operator
    task: asyncio.Task[None]
    registry: CollectorRegistry

    async def stop(self) -> None:
        self.operator.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 10)
        await self.operator.close()


@dataclass
class Env:
    cluster: Any
    """An ``EmbeddedCluster``, or under ``real`` a ``RealControlPlane`` (``url``,
    ``kubeconfig_path``; no ``api``)."""
    client: ApiClient
    running: RunningOperator | None = None
    real: bool = False
    """A real control plane: new namespaces wait for their ``default`` ServiceAccount (kube's
    ServiceAccount admission refuses pods until the controller manager made it)."""
    _ns: int = field(default=0)

    async def start_operator(self, *, clock: Clock = REAL_CLOCK, **options: Any) -> RunningOperator:
        """The operator in-process with ``options``; ``clock``: its one time source."""
        registry = new_registry(process_metrics=False)
        settings: dict[str, Any] = {
            "metrics_bind_address": "0",
            "health_probe_bind_address": "0",
            "webhook_server_port": 0,  # tests/e2e/test_webhooks.py turns it on
            "component_host": "test",
            "graceful_shutdown_timeout": 2.0,
        }
        opts = OperatorOptions(**{**settings, **options})
        operator = Operator(self.client, opts, registry=registry, clock=clock)
        task = asyncio.create_task(operator.run())
        self.running = RunningOperator(operator, task, registry)
        await asyncio.wait_for(operator.manager.informers.wait_for_sync(), 10)
        return self.running

    async def stop_operator(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    async def priority_classes(self, values: dict[str, int]) -> None:
        """Create a PriorityClass per ``name -> value``."""
        for name, value in values.items():
            await self.client.create(
                PRIORITYCLASSES,
                {
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                },
            )

    async def namespace(self, prefix: str) -> str:
        self._ns += 1
        name = f"{prefix}-{self._ns}"
        await self.client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        if self.real:
            await poll(
                lambda: self._exists(SERVICEACCOUNTS, name, "default"),
                timeout=30,
                what=f"ServiceAccount {name}/default",
            )
        return name

    async def _exists(self, ref: ResourceRef, ns: str, name: str) -> bool:
        try:
            await self.client.get(ref, ns, name)
        except ApiStatusError as e:
            if e.is_not_found:
                return False
            raise
        return True

    async def create_job(self, job: Obj) -> Obj:
        return await self.client.create(kubeflow(job["kind"]), job)

    async def get_job(self, kind: str, ns: str, name: str) -> Obj | None:
        try:
            return await self.client.get(kubeflow(kind), ns, name)
        except ApiStatusError as e:
            if e.is_not_found:
                return None
            raise

    async def pods(self, ns: str) -> list[Obj]:
        return sorted(await self.client.list_all(PODS, ns), key=lambda p: p["metadata"]["name"])

    async def services(self, ns: str) -> list[Obj]:
        return sorted(await self.client.list_all(SERVICES, ns), key=lambda s: s["metadata"]["name"])

    async def events(self, ns: str) -> list[Obj]:
        return await self.client.list_all(EVENTS, ns)

    async def request_counts(self) -> RequestCounts:
        """The API server's ``apiserver_request_total`` so far, from its ``/metrics`` over HTTP
        (the embedded and the real server count the same labels): ``"VERB resource[/sub]"`` ->
        requests answered. Server-wide: take deltas, in a window where only the code under test
        writes."""
        return parse_request_counts((await self.client.request_bytes("GET", "/metrics")).decode())

    async def wait_condition(
        self, kind: str, ns: str, name: str, ctype: str, *, timeout: float = 15.0
    ) -> Obj:
        """Poll until the job has condition ``ctype`` True; returns the job."""

        async def check() -> Obj | None:
            job = await self.get_job(kind, ns, name)
            if job is not None and has_condition(job, ctype):
                return job
            return None

        return await poll(check, timeout=timeout, what=f"{kind} {ns}/{name} {ctype}")


def has_condition(job: Obj, ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def condition_types(job: Obj) -> list[str]:
    return [c["type"] for c in (job.get("status") or {}).get("conditions") or []]


async def poll(
    check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


async def open_env(
    nodes: int = 4,
    *,
    apiserver: str = "embedded",
    plane_options: Any = None,
    nodesim_options: NodeSimOptions | None = None,
    kube_controllers: bool = False,
) -> AsyncIterator[Env]:
    """Cluster + client + CRDs (no operator yet). ``apiserver``: ``embedded`` or ``real``;
    ``plane_options``: the real control plane's ``ControlPlaneOptions``; ``nodesim_options``:
    the embedded cluster's simulated nodes (their room, say); ``kube_controllers``: the
    embedded cluster runs batch/v1 Jobs (the real plane's controller manager always does)."""
    if apiserver == "real":
        async for env in _open_real_env(nodes, plane_options):
            yield env
        return
    async with EmbeddedCluster(
        nodes=nodes, nodesim_options=nodesim_options, kube_controllers=kube_controllers
    ) as cluster:
        async for env in _open_client_env(cluster, real=False):
            yield env


async def _open_client_env(cluster: Any, *, real: bool) -> AsyncIterator[Env]:
    config = await load_kubeconfig(cluster.kubeconfig_path)
    async with ApiClient(
        config, ClientOptions(qps=0, registry=new_registry(process_metrics=False))
    ) as client:
        for crd in all_crds():
            await client.create(CRDS, crd)
        if real:  # a real server serves a CRD's resource only once it is Established
            for crd in all_crds():
                await poll(
                    lambda name=crd["metadata"]["name"]: _established(client, name),
                    timeout=30,
                    what=f"CRD {crd['metadata']['name']} Established",
                )
        env = Env(cluster, client, real=real)
        try:
            yield env
        finally:
            await env.stop_operator()


async def _established(client: ApiClient, name: str) -> bool:
    crd = await client.get(CRDS, None, name)
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


async def _open_real_env(nodes: int, plane_options: Any = None) -> AsyncIterator[Env]:
    """A RealControlPlane of its own + the node simulator against it (logs: out of scope)."""
    from conformance.controlplane import RealControlPlane  # only the real tier needs it

    async with RealControlPlane(plane_options) as plane:
        sim = NodeSimulator.for_config(
            await load_kubeconfig(plane.kubeconfig_path), NodeSimOptions(nodes=nodes)
        )
        await sim.start()
        try:
            async for env in _open_client_env(plane, real=True):
                yield env
        finally:
            await sim.stop()


def container(name: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox:1", **extra}


def job_manifest(
    kind: str,
    replica_field: str,
    container_name: str,
    replicas: dict[str, int],
    *,
    name: str,
    namespace: str,
    run_seconds: float = 0.3,
    annotations: dict[str, dict[str, str]] | None = None,
    restart_policy: str | None = None,
    run_policy: Obj | None = None,
    ports: list[Obj] | None = None,
    **spec: Any,
) -> Obj:
    """A job whose pods run ``run_seconds`` on the simulated nodes; ``annotations`` adds
    per-replica-type pod annotations (``sim.kubetrain.dev/...``)."""
    specs: Obj = {}
    for rtype, n in replicas.items():
        pod_annotations = {SIM + "run-seconds": str(run_seconds)}
        pod_annotations.update((annotations or {}).get(rtype, {}))
        c = container(container_name)
        if ports is not None:
            c["ports"] = ports
        rspec: Obj = {
            "replicas": n,
            "template": {
                "metadata": {"annotations": pod_annotations},
                "spec": {"containers": [c]},
            },
        }
        if restart_policy is not None:
            rspec["restartPolicy"] = restart_policy
        specs[rtype] = rspec
    body: Obj = {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {replica_field: specs, **spec},
    }
    if run_policy is not None:
        body["spec"]["runPolicy"] = run_policy
    return body


def env_of(pod: Obj, container_name: str) -> dict[str, str]:
    for c in pod["spec"]["containers"]:
        if c["name"] == container_name:
            return {e["name"]: e.get("value", "") for e in c.get("env") or []}
    raise AssertionError(f"no container {container_name} in {pod['metadata']['name']}")


def metric_value(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
