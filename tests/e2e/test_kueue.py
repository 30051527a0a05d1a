"""kubetrain next to the real Kueue (v0.17, built by ``tools/conformance/build_kueue.sh``) on a real
control plane with simulated nodes (issue 16).

The scenario of the issue: a ClusterQueue with quota for ``QUOTA_PODS`` pods, PyTorchJobs for
twice as many submitted at once to its LocalQueue (label ``kueue.x-k8s.io/queue-name``). Kueue's
webhook suspends each job at creation and its controller unsuspends a job when its Workload is
admitted. The test watches, from outside, that:

- every job that waited for quota showed kubetrain's ``Suspended`` condition and then resumed
  (``Suspended`` False, then ``Running`` and ``Succeeded``): kubetrain honoured both writes (a job
  Kueue admits before kubetrain's first reconcile of it never shows Suspended, rightly);
- no pod of a job ever exists while that job is suspended and not yet admitted;
- the pods that exist and are not finished never need more than the quota (sampled every 50 ms
  from the API server: pods and jobs listed together);
- every Workload ends ``Finished`` and the ClusterQueue's usage returns to zero;
- each kubeflow.org v1 kind Kueue integrates (all but MPIJob, whose Kueue integration is
  v2beta1) is suspended by its webhook and runs once admitted, one PodSet per replica type;
- with preemption (a ClusterQueue with ``withinClusterQueue: LowerPriority``, two
  WorkloadPriorityClasses), Kueue suspends a *running* low-priority job for a high-priority one:
  kubetrain deletes its pods and shows it Suspended, and resumes it when it is admitted again.

Runs only in the conformance tier (``--apiserver=real``): Kueue needs a real kube-apiserver
(conversion webhooks, aggregated discovery it checks at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from conformance.kueue import find_kueue, kueue_root, running_kueue
from jobkit_e2e import Env, has_condition, job_manifest, open_env, poll

from kubetrain.informers.resource import PODS, ResourceRef, kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.kinds import ALL_KINDS, JobKind

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.conformance]

KIND = "PyTorchJob"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
QUOTA_PODS = 4
POD_CPU_MILLI = 500
JOBS = 4  # of 2 pods each: twice the quota
RUN_SECONDS = 2.0

# Kueue's kubeflow.org integrations for the v1 API (its kubeflow.org/mpijob is MPIJob v2beta1)
KUEUE_KINDS = tuple(k for k in ALL_KINDS if k.kind != "MPIJob")
ONE_JOB_REPLICAS = {
    "TFJob": {"Worker": 2},
    "PyTorchJob": {"Master": 1, "Worker": 1},
    "XGBoostJob": {"Master": 1, "Worker": 1},
    "PaddleJob": {"Master": 1, "Worker": 1},
    "JAXJob": {"Worker": 2},
}

RESOURCE_FLAVORS = ResourceRef(
    "kueue.x-k8s.io", "v1beta2", "resourceflavors", False, "ResourceFlavor"
)
CLUSTER_QUEUES = ResourceRef("kueue.x-k8s.io", "v1beta2", "clusterqueues", False, "ClusterQueue")
LOCAL_QUEUES = ResourceRef("kueue.x-k8s.io", "v1beta2", "localqueues", True, "LocalQueue")
WORKLOADS = ResourceRef("kueue.x-k8s.io", "v1beta2", "workloads", True, "Workload")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    if selected_apiserver(request.config) != "real":
        pytest.skip("Kueue runs against the real control plane (--apiserver=real)")
    if find_kueue() is None:
        pytest.fail(f"Kueue is not built in {kueue_root()}: run tools/conformance/build_kueue.sh")
    work = Path(tmp_path_factory.mktemp("kueue"))
    async for e in open_env(apiserver="real"):
        frameworks = [f"kubeflow.org/{kind.kind.lower()}" for kind in KUEUE_KINDS]
        async with running_kueue(e.client, e.cluster.kubeconfig_path, work, frameworks=frameworks):
            await e.start_operator(enable_schemes=tuple(k.kind.lower() for k in KUEUE_KINDS))
            yield e


def queued_job(
    name: str,
    ns: str,
    *,
    replicas: dict[str, int] | None = None,
    run_seconds: float = RUN_SECONDS,
    kind: JobKind = ALL_KINDS[1],
) -> dict:
    job = job_manifest(
        kind.kind,
        kind.replica_field,
        kind.default_container,
        replicas or {"Master": 1, "Worker": 1},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
    )
    job["metadata"]["labels"] = {QUEUE_LABEL: "lq"}
    for spec in job["spec"][kind.replica_field].values():
        for c in spec["template"]["spec"]["containers"]:
            c["resources"] = {"requests": {"cpu": f"{POD_CPU_MILLI}m"}}
    return job


async def make_queues(
    env: Env, ns: str, *, cluster_queue: str = "cq", preemption: bool = False
) -> None:
    with contextlib.suppress(ApiStatusError):  # one per cluster; the module's tests share it
        await env.client.create(
            RESOURCE_FLAVORS,
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "ResourceFlavor",
                "metadata": {"name": "default"},
            },
        )
    extra = {"preemption": {"withinClusterQueue": "LowerPriority"}} if preemption else {}
    await env.client.create(
        CLUSTER_QUEUES,
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue},
            "spec": {
                **extra,
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu"],
                        "flavors": [
                            {
                                "name": "default",
                                "resources": [
                                    {
                                        "name": "cpu",
                                        "nominalQuota": f"{QUOTA_PODS * POD_CPU_MILLI}m",
                                    }
                                ],
                            }
                        ],
                    }
                ],
            },
        },
    )
    await env.client.create(
        LOCAL_QUEUES,
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": "lq", "namespace": ns},
            "spec": {"clusterQueue": cluster_queue},
        },
    )

    async def active() -> bool:
        cq = await env.client.get(CLUSTER_QUEUES, None, cluster_queue)
        return has_condition(cq, "Active")

    await poll(active, timeout=30, what=f"ClusterQueue {cluster_queue} Active")


async def test_kueue_admits_within_quota_and_kubetrain_honours_suspend(env: Env) -> None:
    ns = await env.namespace("kueue")
    await make_queues(env, ns)
    names = [f"q{i}" for i in range(JOBS)]
    for name in names:
        created = await env.create_job(queued_job(name, ns))
        # Kueue's mutating webhook suspended it on the way in
        assert created["spec"]["runPolicy"].get("suspend") is True, created["spec"]["runPolicy"]

    max_active_pods = 0
    pods_while_suspended: list[str] = []
    seen_suspended: set[str] = set()
    seen_resumed: set[str] = set()
    done: set[str] = set()
    deadline = time.monotonic() + 120
    while len(done) < JOBS:
        assert time.monotonic() < deadline, f"jobs not all Succeeded in 120 s: {sorted(done)}"
        # pods first: a pod listed before a job that still says suspend (and never resumed)
        # was made while it was suspended; the other order races Kueue's unsuspend
        pods = await env.client.list_all(PODS, ns)
        jobs = {j["metadata"]["name"]: j for j in await env.client.list_all(kubeflow(KIND), ns)}
        active = [
            p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        max_active_pods = max(max_active_pods, len(active))
        for name, job in jobs.items():
            conds = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions") or []}
            if conds.get("Suspended") == "True":
                seen_suspended.add(name)
            elif name in seen_suspended and conds.get("Suspended") == "False":
                seen_resumed.add(name)
            if conds.get("Succeeded") == "True":
                done.add(name)
            never_ran = job["spec"]["runPolicy"].get("suspend") and name not in seen_resumed
            if never_ran:
                pods_while_suspended += [
                    p["metadata"]["name"]
                    for p in pods
                    if p["metadata"].get("labels", {}).get(JOB_NAME_LABEL) == name
                ]
        await asyncio.sleep(0.05)

    print(f"kueue: max active pods {max_active_pods} of quota {QUOTA_PODS}")
    assert pods_while_suspended == []
    assert max_active_pods <= QUOTA_PODS, f"{max_active_pods} pods active, quota {QUOTA_PODS}"
    assert max_active_pods > 0
    # Kueue may admit a job before kubetrain's first reconcile of it (then the job never shows
    # Suspended, rightly: kubetrain acts on the latest state). The jobs beyond the quota wait
    # for the first ones to finish: kubetrain must show those Suspended, then resumed.
    waited = JOBS - QUOTA_PODS // 2
    assert len(seen_suspended) >= waited, f"Suspended shown for {sorted(seen_suspended)}"
    assert seen_resumed == seen_suspended, "each one resumed when Kueue admitted it"

    workloads = await env.client.list_all(WORKLOADS, ns)
    assert len(workloads) == JOBS
    for workload in workloads:
        assert has_condition(workload, "Admitted") or has_condition(workload, "Finished")

    async def finished() -> bool:
        wls = await env.client.list_all(WORKLOADS, ns)
        return all(has_condition(w, "Finished") for w in wls)

    await poll(finished, timeout=30, what="every Workload Finished")

    async def released() -> bool:
        cq = await env.client.get(CLUSTER_QUEUES, None, "cq")
        usage = (cq.get("status") or {}).get("flavorsUsage") or []
        return (
            all(r.get("total") in ("0", 0, None) for f in usage for r in f.get("resources") or [])
            and (cq.get("status") or {}).get("admittedWorkloads", 0) == 0
        )

    await poll(released, timeout=30, what="ClusterQueue usage back to 0")


WORKLOAD_PRIORITY_CLASSES = ResourceRef(
    "kueue.x-k8s.io", "v1beta2", "workloadpriorityclasses", False, "WorkloadPriorityClass"
)
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


async def test_kueue_preemption_suspends_a_running_job_and_resumes_it(env: Env) -> None:
    """A running low-priority job is evicted by Kueue (``suspend`` set while it runs) for a
    high-priority one that needs the whole quota: kubetrain deletes its pods and shows it
    Suspended; the high one runs; then the low one is admitted again and succeeds."""
    ns = await env.namespace("kueue-preempt")
    await make_queues(env, ns, cluster_queue="cq-preempt", preemption=True)
    for name, value in (("wl-low", 10), ("wl-high", 1000)):
        await env.client.create(
            WORKLOAD_PRIORITY_CLASSES,
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "WorkloadPriorityClass",
                "metadata": {"name": name},
                "value": value,
            },
        )
    low = queued_job("low", ns, replicas={"Master": 1, "Worker": 3}, run_seconds=8.0)
    low["metadata"]["labels"][PRIORITY_LABEL] = "wl-low"
    await env.create_job(low)
    await env.wait_condition(KIND, ns, "low", "Running", timeout=30)

    high = queued_job("high", ns, replicas={"Master": 1, "Worker": 3})
    high["metadata"]["labels"][PRIORITY_LABEL] = "wl-high"
    await env.create_job(high)

    max_active_pods = 0
    low_pods_while_high_ran: list[str] = []
    low_suspended_while_running = False
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, "high then low did not both succeed in 90 s"
        jobs = {j["metadata"]["name"]: j for j in await env.client.list_all(kubeflow(KIND), ns)}
        pods = await env.client.list_all(PODS, ns)
        active = [
            p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        max_active_pods = max(max_active_pods, len(active))
        if has_condition(jobs["low"], "Suspended"):
            low_suspended_while_running = True
        high_running = has_condition(jobs["high"], "Running")
        if high_running:
            low_pods_while_high_ran += [
                p["metadata"]["name"]
                for p in active
                if p["metadata"].get("labels", {}).get(JOB_NAME_LABEL) == "low"
            ]
        if has_condition(jobs["high"], "Succeeded") and has_condition(jobs["low"], "Succeeded"):
            break
        await asyncio.sleep(0.05)

    print(f"kueue preemption: max active pods {max_active_pods} of quota {QUOTA_PODS}")
    assert low_suspended_while_running, "kubetrain showed the evicted job Suspended"
    assert low_pods_while_high_ran == [], "the evicted job's pods were deleted"
    assert max_active_pods <= QUOTA_PODS
    low_job = await env.get_job(KIND, ns, "low")
    assert low_job is not None
    suspended = next(c for c in low_job["status"]["conditions"] if c["type"] == "Suspended")
    assert suspended["status"] == "False"  # resumed before it succeeded
    events = await env.events(ns)
    reasons = {e.get("reason") for e in events if e["involvedObject"].get("name") == "low"}
    assert "Preempted" in reasons or "Evicted" in reasons or "Stopped" in reasons, reasons


@pytest.mark.parametrize("kind", KUEUE_KINDS, ids=lambda k: k.kind)
async def test_every_v1_kind_is_suspended_by_kueue_and_runs_once_admitted(
    env: Env, kind: JobKind
) -> None:
    """Kueue's webhook for each kubeflow.org v1 kind suspends the job; its Workload is admitted
    (one PodSet per replica type) and kubetrain runs the job to Succeeded."""
    ns = await env.namespace(f"kueue-{kind.kind.lower()}")
    await make_queues(env, ns, cluster_queue=f"cq-{kind.kind.lower()}")
    replicas = ONE_JOB_REPLICAS[kind.kind]
    created = await env.create_job(queued_job("one", ns, replicas=replicas, kind=kind))
    assert created["spec"]["runPolicy"].get("suspend") is True
    await env.wait_condition(kind.kind, ns, "one", "Succeeded", timeout=60)
    job = await env.get_job(kind.kind, ns, "one")
    assert job is not None
    # Suspended was True until admission, unless Kueue admitted it before kubetrain's first
    # reconcile; either way not suspended now
    suspended = [c for c in job["status"]["conditions"] if c["type"] == "Suspended"]
    assert all(c["status"] == "False" for c in suspended), suspended
    (workload,) = await env.client.list_all(WORKLOADS, ns)
    pod_sets = {p["name"]: p["count"] for p in workload["spec"]["podSets"]}
    assert pod_sets == {rtype.lower(): n for rtype, n in replicas.items()}
