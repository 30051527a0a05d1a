"""Issue 15, "A partition": the operator is cut off from the API server (every watch dropped,
every connection refused) for ``PARTITION_SECONDS`` while its jobs go on.

The embedded server's ``partition`` fault (``cluster/apiserver/faults.py``) hits only the
operator's client (by User-Agent): the simulated nodes keep running pods, and this harness keeps
creating jobs and reading through a client of its own, so jobs are created *during* the partition
too (the operator has to learn of them afterwards). Half-way through, the watch history of
``pytorchjobs`` is compacted (``compact``): that informer must relist exactly once, every other
informer must resume its watch from its last resourceVersion with no LIST.

Measured and asserted:

- requests per second the operator sends during the partition (the fault's ``fired`` counter:
  every refused request is one firing) stay bounded: reflectors back off 0.8 s doubling to 30 s
  with jitter, so each informer makes about log2(T / 0.8) + T / 30 attempts in T seconds;
- after it: LISTs per resource from the server's ``apiserver_request_total`` (pytorchjobs: 1,
  pods and services: 0) and the informers' own relist counters;
- no duplicate pod: one pod per (job, replica type, index), ``POST pods`` answered 201 exactly
  once per pod, every job Succeeded.

The issue's figure is 60 s; the default suite uses 8 s to stay short (the backoff reaches its
6.4 s step, the dynamics are the same). ``KUBETRAIN_PARTITION_SECONDS=60`` runs the issue's
figure (about 90 s in all). The jitter of the backoff is unit-tested in
``tests/informers/test_reflector.py``.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from jobkit_e2e import CRDS, NAMESPACES, Env, has_condition, job_manifest, poll

from kubetrain.bench.apimetrics import delta, parse_request_counts
from kubetrain.cluster.apiserver.faults import FaultRule
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import PODS, kubeflow
from kubetrain.reconcilers.api.crds import all_crds

pytestmark = [pytest.mark.asyncio(loop_scope="module")]

PARTITION_SECONDS = float(os.environ.get("KUBETRAIN_PARTITION_SECONDS", "8"))
"""How long the operator is cut off (the issue says 60 s; see the module docstring)."""
OPERATOR_UA = "kubetrain-operator-under-partition/1"
HARNESS_UA = "partition-harness/1"
KIND = "PyTorchJob"
JOBS_BEFORE = 3  # created and running when the partition starts
JOBS_DURING = 3  # created by the harness while the operator is cut off
REPLICAS = {"Master": 1, "Worker": 2}
INFORMERS = 4
"""The operator's informers with PyTorchJob on: pytorchjobs, pods, services, HPAs."""
ATTEMPT_COPIES = 2
"""Server-side firings per reflector attempt: aiohttp's session retries an idempotent request
once, at once, when the connection is dropped (``aiohttp/client.py``, ``_retry_connection``),
so each refused watch reaches the server twice."""
STEADY_AFTER = 2
"""Whole seconds after the partition's start after which the per-second bound applies (the first
seconds hold the immediate re-watches and the first 0.8-1.6 s backoff step of every informer)."""
REQUEUE_SLACK = ATTEMPT_COPIES
"""One reconcile whose requeue was already due (a batched status write, an expectations timeout)
may send one request in a second of the partition, refused (and retried once) like a watch; its
own retries then back off in the work queue. Seen: 9 in one second, where the informers alone
allow 8."""
MAX_PER_SECOND_STEADY = INFORMERS * ATTEMPT_COPIES + REQUEUE_SLACK
"""Refused requests in any one second after ``STEADY_AFTER``: from its second step on, a
reflector's backoff is >= 1.6 s, so at most one attempt per informer per second, plus
``REQUEUE_SLACK`` (with no watch events nothing new is reconciled). A hot loop would be
hundreds."""


def max_refused(seconds: float) -> float:
    """Refused requests a partition of ``seconds`` may see in all: per informer the first
    re-watch, one attempt per backoff step (0.8 s doubling: log2(T / 0.8) steps to the cap) and
    one per 25.6-30 s at the cap, plus one of slack."""
    attempts = 3 + math.log2(max(1.0, seconds / 0.8)) + seconds / 25.6
    return INFORMERS * ATTEMPT_COPIES * attempts


def pytorch(name: str, ns: str) -> dict:
    # pods run for a while: the ones created before the partition finish during it
    run_seconds = min(3.0, PARTITION_SECONDS / 3)
    return job_manifest(
        KIND, "pytorchReplicaSpecs", "pytorch", REPLICAS, name=name, namespace=ns,
        run_seconds=run_seconds,
    )  # fmt: skip


async def _client(cluster: EmbeddedCluster, user_agent: str) -> ApiClient:
    config = await load_kubeconfig(cluster.kubeconfig_path)
    return ApiClient(
        config,
        ClientOptions(qps=0, registry=new_registry(process_metrics=False), user_agent=user_agent),
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def envs() -> AsyncIterator[tuple[Env, ApiClient]]:
    """(the operator's Env, whose client only the operator uses; the harness client)."""
    async with EmbeddedCluster(nodes=4) as cluster:
        harness = await _client(cluster, HARNESS_UA)
        operator_client = await _client(cluster, OPERATOR_UA)
        async with harness, operator_client:
            for crd in all_crds():
                await harness.create(CRDS, crd)
            env = Env(cluster, operator_client)
            await env.start_operator(enable_schemes=("pytorchjob",))
            try:
                yield env, harness
            finally:
                await env.stop_operator()


async def _counts(harness: ApiClient, *, by_code: bool = False) -> dict[str, int]:
    return parse_request_counts(
        (await harness.request_bytes("GET", "/metrics")).decode(), by_code=by_code
    )


async def _succeeded(harness: ApiClient, ns: str, names: list[str]) -> bool:
    for name in names:
        job = await harness.get(kubeflow(KIND), ns, name)
        if not has_condition(job, "Succeeded"):
            return False
    return True


def _relists(env: Env) -> dict[str, float]:
    assert env.running is not None
    out: dict[str, float] = {}
    for family in env.running.registry.collect():
        if family.name != "kubetrain_informer_relists":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["resource"]] = sample.value
    return out


async def test_partition_backoff_resume_relist_once_no_duplicate_pod(
    envs: tuple[Env, ApiClient],
) -> None:
    env, harness = envs
    cluster = env.cluster
    ns = "partition"
    await harness.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    before = [f"before-{i}" for i in range(JOBS_BEFORE)]
    during = [f"during-{i}" for i in range(JOBS_DURING)]
    pods_per_job = sum(REPLICAS.values())
    counts_start = await _counts(harness, by_code=True)
    for name in before:
        await harness.create(kubeflow(KIND), pytorch(name, ns))

    async def all_pods_of_before_jobs() -> bool:
        return len(await harness.list_all(PODS, ns)) == JOBS_BEFORE * pods_per_job

    await poll(all_pods_of_before_jobs, timeout=20, what="the pods of the first jobs")
    await asyncio.sleep(0.5)  # let the operator's watches catch up (status writes settle)

    # -- the partition ------------------------------------------------------------------------
    counts_before = await _counts(harness)
    relists_before = _relists(env)
    fault = cluster.api.faults.add(
        FaultRule(action="partition", duration_seconds=PARTITION_SECONDS, user_agent=OPERATOR_UA)
    )
    started = time.monotonic()
    per_second: list[int] = []
    last = 0
    compacted = False
    created_during = False
    while time.monotonic() - started < PARTITION_SECONDS - 0.05:
        elapsed = time.monotonic() - started
        if not created_during and elapsed >= 0.5:
            for name in during:  # the harness is not cut off: these exist during the partition
                await harness.create(kubeflow(KIND), pytorch(name, ns))
            created_during = True
        if not compacted and elapsed >= PARTITION_SECONDS / 2:
            # forget pytorchjobs' watch history: that informer's resume point is gone
            cluster.api.faults.add(
                FaultRule(action="compact", resource="pytorchjobs", group="kubeflow.org")
            )
            compacted = True
        await asyncio.sleep(min(1.0, max(0.0, started + len(per_second) + 1 - time.monotonic())))
        if time.monotonic() - started >= len(per_second) + 1:
            per_second.append(fault.fired - last)
            last = fault.fired

    async def over() -> bool:  # the injector retires a partition once its duration is over
        return all(f is not fault or not f.active for f in cluster.api.faults.faults)

    await poll(over, timeout=5, what="the end of the partition")
    refused = fault.fired
    assert compacted and created_during

    # -- after: everything finishes, with one relist (pytorchjobs) and resumed watches -----------
    all_jobs = before + during
    recovered_at = time.monotonic()
    await poll(
        lambda: _succeeded(harness, ns, all_jobs),
        timeout=PARTITION_SECONDS + 45,
        interval=0.2,
        what="every job Succeeded",
    )
    recovery = time.monotonic() - recovered_at
    counts_after = await _counts(harness)  # before any LIST of the harness
    relists_after = _relists(env)
    lists = {
        resource: delta(counts_before, counts_after).get(f"LIST {resource}", 0)
        for resource in ("pytorchjobs", "pods", "services")
    }
    informer_relists = {
        resource: relists_after.get(resource, 0) - relists_before.get(resource, 0)
        for resource in sorted(relists_after)
    }
    rate = refused / PARTITION_SECONDS
    steady = per_second[STEADY_AFTER:]
    print(
        f"\npartition {PARTITION_SECONDS:.0f}s: operator requests refused {refused} "
        f"({rate:.2f}/s), per second {per_second}; LISTs after {lists}; informer relists "
        f"{informer_relists}; all jobs Succeeded {recovery:.1f}s after it ended"
    )

    # requests per second stay bounded (no hot loop on refused connections)
    assert steady and max(steady) <= MAX_PER_SECOND_STEADY, per_second
    assert refused <= max_refused(PARTITION_SECONDS), (refused, per_second)
    # pytorchjobs' history was compacted: exactly one LIST; pods and services resumed their
    # watches from their last resourceVersion: no LIST
    assert lists == {"pytorchjobs": 1, "pods": 0, "services": 0}, lists
    assert informer_relists["pytorchjobs.kubeflow.org"] == 1, informer_relists
    assert sum(informer_relists.values()) == 1, informer_relists

    # no duplicate pod: one per (job, replica type, index), each POSTed successfully once
    pods = await harness.list_all(PODS, ns)
    keys = [
        (
            p["metadata"]["labels"]["training.kubeflow.org/job-name"],
            p["metadata"]["labels"]["training.kubeflow.org/replica-type"],
            p["metadata"]["labels"]["training.kubeflow.org/replica-index"],
        )
        for p in pods
    ]
    assert len(keys) == len(set(keys)) == len(all_jobs) * pods_per_job, sorted(keys)
    created = delta(counts_start, await _counts(harness, by_code=True)).get("POST pods 201", 0)
    assert created == len(all_jobs) * pods_per_job
