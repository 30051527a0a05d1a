"""TrainJobs next to the real Kueue (v0.17, built by ``tools/conformance/build_kueue.sh``) on a
real control plane with the real JobSet controller and simulated nodes, kubetrain's TrainJob
webhooks installed as a cluster install has them.

Kueue's TrainJob integration (``trainer.kubeflow.org/trainjob``, no JobSet integration needed):
its mutating webhook suspends a TrainJob that names a LocalQueue and appends a runtimePatch of
manager ``kueue.x-k8s.io/manager``; its controller computes the Workload's PodSets with
Trainer v2.2.0's runtime code (from the ClusterTrainingRuntime and the TrainJob) and, on
admission, Updates the TrainJob twice: the patch filled with the pod labels of the admission
while still suspended, then ``suspend: false`` (kubetrain's validator allows runtimePatches to
change when ``suspend`` is true before or after, as Trainer's).

The scenario: a ClusterQueue with cpu for one TrainJob of 2 nodes, two such TrainJobs on
``torch-distributed`` applied with kubectl to its LocalQueue. From outside, while the first
runs the second is Suspended (kubectl's STATE column, ``status.phase``, no pods); the running
one shows ``Running`` in the STATE column, the phase and the kubeflow SDK's ``get_job`` (no
condition left for the SDK to stop at ``Created``); once the first completes Kueue admits the
second, which then shows Running in all three places (trainer#3666, sdk#803) and completes;
both Workloads end ``Finished``.

Runs only in the conformance tier (``--apiserver=real``), as ``test_kueue.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from conformance.apiserver_switch import selected_apiserver
from conformance.controlplane import host_address
from conformance.kueue import find_kueue, kueue_root, running_kueue
from jobkit_e2e import Env, has_condition, poll
from test_kueue import CLUSTER_QUEUES, LOCAL_QUEUES, QUEUE_LABEL, RESOURCE_FLAVORS, WORKLOADS
from test_trainjobs import sdk_installed, sdk_status, state_column
from trainjob_e2e import Obj, condition, get, open_trainer_env, run_kubectl, trainjob

from kubetrain.informers.resource import PODS
from kubetrain.reconcilers.api.webhooks import WebhookService
from kubetrain.reconcilers.trainer.resources import TRAINJOBS
from kubetrain.up import free_port
from kubetrain.webhook_install import install_webhooks, wait_until_admitting

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.conformance]

FRAMEWORK = "trainer.kubeflow.org/trainjob"
KUEUE_MANAGER = "kueue.x-k8s.io/manager"
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
PODSET_LABEL = "kueue.x-k8s.io/podset"
SERVICE = WebhookService(namespace="kubetrain-system")
NODES = 2
POD_CPU_MILLI = 500
RUN_SECONDS = 25  # the window in which Running is checked in three places, also under CI load


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    if selected_apiserver(request.config) != "real":
        pytest.skip("Kueue runs against the real control plane (--apiserver=real)")
    if find_kueue() is None:
        pytest.fail(f"Kueue is not built in {kueue_root()}: run tools/conformance/build_kueue.sh")
    port = free_port()
    async for e in open_trainer_env(
        request, tmp_path_factory, webhook_server_port=port, operator_namespace=SERVICE.namespace
    ):
        await install_webhooks(
            e.client, port=port, service=SERVICE, endpoint_address=host_address()
        )
        await wait_until_admitting(e.client)
        # the Trainer and JobSet CRDs exist before Kueue starts: its TrainJob integration
        # indexes TrainJobs and runtimes and owns JobSets
        work = Path(tmp_path_factory.mktemp("kueue-trainjobs"))
        async with running_kueue(e.client, e.cluster.kubeconfig_path, work, frameworks=[FRAMEWORK]):
            yield e


async def make_queues(env: Env, ns: str) -> None:
    """ResourceFlavor ``default``, ClusterQueue ``cq-tj`` with cpu for one TrainJob of
    ``NODES`` nodes, LocalQueue ``lq`` in ``ns``."""
    await env.client.create(
        RESOURCE_FLAVORS,
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ResourceFlavor",
            "metadata": {"name": "default"},
        },
    )
    quota = f"{NODES * POD_CPU_MILLI}m"
    await env.client.create(
        CLUSTER_QUEUES,
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": "cq-tj"},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu"],
                        "flavors": [
                            {
                                "name": "default",
                                "resources": [{"name": "cpu", "nominalQuota": quota}],
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
            "spec": {"clusterQueue": "cq-tj"},
        },
    )

    async def active() -> bool:
        return has_condition(await env.client.get(CLUSTER_QUEUES, None, "cq-tj"), "Active")

    await poll(active, timeout=120, what="ClusterQueue cq-tj Active")


def queued_trainjob(name: str, ns: str) -> Obj:
    """A TrainJob of ``NODES`` nodes on torch-distributed in LocalQueue ``lq``, each pod
    requesting ``POD_CPU_MILLI`` and running ``RUN_SECONDS`` (a user's runtimePatch)."""
    annotations = {"sim.kubetrain.dev/run-seconds": str(RUN_SECONDS)}
    pod_patch = {"template": {"spec": {"template": {"metadata": {"annotations": annotations}}}}}
    job = trainjob(
        name,
        ns,
        trainer={
            "numNodes": NODES,
            "resourcesPerNode": {"requests": {"cpu": f"{POD_CPU_MILLI}m"}},
        },
        runtimePatches=[
            {
                "manager": "example.com/e2e",
                "trainingRuntimeSpec": {
                    "template": {"spec": {"replicatedJobs": [{"name": "node", **pod_patch}]}}
                },
            }
        ],
    )
    job["metadata"]["labels"] = {QUEUE_LABEL: "lq"}
    return job


def phase(tj: Obj | None) -> str | None:
    return ((tj or {}).get("status") or {}).get("phase")


def kueue_patch(tj: Obj) -> Obj | None:
    return next(
        (p for p in tj["spec"].get("runtimePatches") or [] if p.get("manager") == KUEUE_MANAGER),
        None,
    )


async def pods_of(env: Env, ns: str, name: str) -> list[Obj]:
    return [
        p
        for p in await env.client.list_all(PODS, ns)
        if p["metadata"].get("labels", {}).get(JOBSET_NAME_LABEL) == name
    ]


async def shows_running(env: Env, ns: str, name: str) -> None:
    """Running in the STATE column, the phase and the SDK; no condition."""
    tj = await get(env, TRAINJOBS, ns, name)
    assert tj is not None and phase(tj) == "Running", tj
    assert not tj["status"].get("conditions"), tj["status"]
    assert await state_column(env, ns, name) == "Running"
    if sdk_installed():
        sdk = await asyncio.to_thread(sdk_status, env.cluster.kubeconfig_path, ns, name)
        assert sdk == "Running", f"SDK status of {name}: {sdk}"


@pytest.mark.timeout(300)
async def test_kueue_queues_trainjobs_and_the_resumed_one_shows_running(env: Env) -> None:
    ns = await env.namespace("kueue-tj")
    await make_queues(env, ns)
    for name in ("tj-a", "tj-b"):
        out = await run_kubectl(
            env, "apply", "-f", "-", stdin=yaml.safe_dump(queued_trainjob(name, ns))
        )
        assert out.returncode == 0, out.stderr
        created = await get(env, TRAINJOBS, ns, name)
        assert created is not None
        # Kueue's webhook suspended it on the way in and appended its (empty) runtimePatch
        assert created["spec"].get("suspend") is True, created["spec"]
        assert kueue_patch(created) is not None, created["spec"]["runtimePatches"]

    # Kueue admits one (whichever it orders first); the other waits for the quota
    async def one_running_one_waiting() -> tuple[str, str] | None:
        jobs = {n: await get(env, TRAINJOBS, ns, n) for n in ("tj-a", "tj-b")}
        phases = {n: phase(tj) for n, tj in jobs.items()}
        running = [n for n, p in phases.items() if p == "Running"]
        waiting = [n for n, p in phases.items() if p == "Suspended"]
        if len(running) == 1 and len(waiting) == 1:
            return running[0], waiting[0]
        return None

    first, second = await poll(
        one_running_one_waiting, timeout=120, what="one TrainJob Running, the other Suspended"
    )
    waiting = await get(env, TRAINJOBS, ns, second)
    assert waiting is not None and waiting["spec"]["suspend"] is True
    assert condition(waiting, "Suspended")["reason"] == "Suspended"
    assert await state_column(env, ns, second) == "Suspended"
    assert await pods_of(env, ns, second) == []

    # the running one: Kueue's patch carries its admission (the podset label) and reached
    # the pods through the JobSet
    running = await get(env, TRAINJOBS, ns, first)
    assert running is not None and running["spec"].get("suspend") is False
    (rjob,) = kueue_patch(running)["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert rjob["name"] == "node"

    async def all_pods_running(name: str) -> list[Obj] | None:
        pods = await pods_of(env, ns, name)
        ok = len(pods) == NODES and all(p["status"].get("phase") == "Running" for p in pods)
        return pods if ok else None

    pods = await poll(lambda: all_pods_running(first), timeout=120, what=f"{first}'s pods Running")
    assert all(p["metadata"]["labels"].get(PODSET_LABEL) == "node" for p in pods)
    await shows_running(env, ns, first)
    # still waiting: the quota is the first one's
    assert phase(await get(env, TRAINJOBS, ns, second)) == "Suspended"
    assert await pods_of(env, ns, second) == []

    # the first completes; Kueue admits the second, which kubetrain resumes
    started = time.monotonic()

    async def in_phase(name: str, want: str) -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, name)
        return tj if phase(tj) == want else None

    done = await poll(lambda: in_phase(first, "Complete"), timeout=120, what=f"{first} Complete")
    assert condition(done, "Complete")["reason"] == "AllJobsCompleted"
    resumed = await poll(
        lambda: in_phase(second, "Running"), timeout=120, what=f"{second} Running after admission"
    )
    waited = time.monotonic() - started
    print(f"kueue trainjobs: {second} Running {waited:.1f} s after {first} was seen Running")
    assert resumed["spec"]["suspend"] is False
    pods = await poll(
        lambda: all_pods_running(second), timeout=120, what=f"{second}'s pods Running"
    )
    assert all(p["metadata"]["labels"].get(PODSET_LABEL) == "node" for p in pods)
    assert all(
        p["metadata"]["annotations"].get("sim.kubetrain.dev/run-seconds") == str(RUN_SECONDS)
        for p in pods
    )
    await shows_running(env, ns, second)

    done = await poll(lambda: in_phase(second, "Complete"), timeout=120, what=f"{second} Complete")
    assert [c["type"] for c in done["status"]["conditions"]] == ["Complete"]
    assert await state_column(env, ns, second) == "Complete"
    if sdk_installed():
        sdk = await asyncio.to_thread(sdk_status, env.cluster.kubeconfig_path, ns, second)
        assert sdk == "Complete"

    async def finished() -> list[Obj] | None:
        wls = await env.client.list_all(WORKLOADS, ns)
        return wls if len(wls) == 2 and all(has_condition(w, "Finished") for w in wls) else None

    workloads = await poll(finished, timeout=120, what="both Workloads Finished")
    owners = {w["metadata"]["ownerReferences"][0]["name"] for w in workloads}
    assert owners == {"tj-a", "tj-b"}
    for workload in workloads:
        assert [p["count"] for p in workload["spec"]["podSets"]] == [NODES]
