"""Gang scheduling end to end (``--gang-scheduler-name``, reference section 3) on the embedded API
server with the operator in-process: a job's PodGroup and its spec, Volcano's wait for the
PodGroup's phase (no pod while Pending; decorated pods once the test admits it), scheduler-plugins'
decorated pods at once, the PodGroup's deletion when the job succeeds or is suspended, and no
PodGroup write while nothing changed.

The cluster has no simulated nodes: nothing but these tests writes a PodGroup's status or a pod's
phase, so each step is the test's own (the node simulator's gang scheduling is tested with it).
The PodGroup CRDs are the embedded cluster's own (``cluster/podgroups.py``: Volcano's without a
status subresource, scheduler-plugins' with one, as upstream).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from jobkit_e2e import CRDS, Env, condition_types, has_condition, job_manifest, poll

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import (
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    PODS,
    ResourceRef,
    kubeflow,
)
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.crds import all_crds

pytestmark = pytest.mark.asyncio(loop_scope="module")

Obj = dict[str, Any]
KIND = "PyTorchJob"
SP_SCHEDULER = "sp-scheduler"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster_client() -> AsyncIterator[tuple[EmbeddedCluster, ApiClient]]:
    async with EmbeddedCluster(nodes=0) as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        options = ClientOptions(qps=0, registry=new_registry(process_metrics=False))
        async with ApiClient(config, options) as client:
            for crd in all_crds():
                await client.create(CRDS, crd)
            yield cluster, client


@pytest_asyncio.fixture(loop_scope="module")
async def volcano(cluster_client: tuple[EmbeddedCluster, ApiClient]) -> AsyncIterator[Env]:
    env = Env(*cluster_client)
    await env.start_operator(enable_schemes=("pytorchjob",), gang_scheduler_name="Volcano")
    yield env
    await env.stop_operator()


@pytest_asyncio.fixture(loop_scope="module")
async def plugins(cluster_client: tuple[EmbeddedCluster, ApiClient]) -> AsyncIterator[Env]:
    env = Env(*cluster_client)
    await env.start_operator(enable_schemes=("pytorchjob",), gang_scheduler_name=SP_SCHEDULER)
    yield env
    await env.stop_operator()


def pytorch(name: str, ns: str, **kw: Any) -> Obj:
    job = job_manifest(
        KIND, "pytorchReplicaSpecs", "pytorch", {"Master": 1, "Worker": 2}, name=name,
        namespace=ns, **kw,
    )  # fmt: skip
    for rtype, cpu in (("Master", "1"), ("Worker", "500m")):
        container = job["spec"]["pytorchReplicaSpecs"][rtype]["template"]["spec"]["containers"][0]
        container["resources"] = {"requests": {"cpu": cpu, "memory": "1Gi"}}
    return job


async def get_podgroup(env: Env, ref: ResourceRef, ns: str, name: str) -> Obj | None:
    try:
        return await env.client.get(ref, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


async def wait_podgroup(env: Env, ref: ResourceRef, ns: str, name: str) -> Obj:
    async def check() -> Obj | None:
        return await get_podgroup(env, ref, ns, name)

    found: Obj = await poll(check, what=f"PodGroup {ns}/{name}")
    return found


async def wait_podgroup_gone(env: Env, ref: ResourceRef, ns: str, name: str) -> None:
    async def gone() -> bool:
        return await get_podgroup(env, ref, ns, name) is None

    await poll(gone, what=f"PodGroup {ns}/{name} deleted")


async def set_phase(env: Env, ref: ResourceRef, ns: str, name: str, phase: str) -> None:
    """Write the PodGroup's ``status.phase`` as its scheduler would (through the status
    subresource when the CRD has one)."""
    crd = await env.client.get(CRDS, None, ref.group_resource)
    subresources = crd["spec"]["versions"][0].get("subresources") or {}
    await env.client.patch(
        ref,
        ns,
        name,
        {"status": {"phase": phase}},
        subresource="status" if "status" in subresources else None,
    )


async def finish_pods(env: Env, ns: str) -> None:
    """Run every pod of ``ns`` to success, as kubelets would."""
    for phase in ("Running", "Succeeded"):
        for pod in await env.pods(ns):
            state: Obj = {"running": {}} if phase == "Running" else {"terminated": {"exitCode": 0}}
            statuses = [{"name": c["name"], "state": state} for c in pod["spec"]["containers"]]
            await env.client.patch(
                PODS,
                ns,
                pod["metadata"]["name"],
                {"status": {"phase": phase, "containerStatuses": statuses}},
                subresource="status",
            )


async def events_of(env: Env, ns: str, reason: str) -> list[Obj]:
    return [e for e in await env.events(ns) if e.get("reason") == reason]


async def test_volcano_pods_wait_for_the_podgroup_then_appear_decorated(volcano: Env) -> None:
    env = volcano
    ns = await env.namespace("volcano")
    job = pytorch(
        "train", ns, run_policy={"schedulingPolicy": {"queue": "team", "priorityClass": "high"}}
    )
    job["metadata"]["annotations"] = {"team": "vision"}
    created = await env.create_job(job)
    podgroup = await wait_podgroup(env, PODGROUPS_VOLCANO, ns, "train")
    assert podgroup["spec"] == {
        "minMember": 3,
        "queue": "team",
        "priorityClassName": "high",
        "minResources": {"cpu": "2", "memory": "3Gi"},
    }
    assert podgroup["metadata"]["annotations"]["team"] == "vision"
    (owner,) = podgroup["metadata"]["ownerReferences"]
    assert (owner["uid"], owner["controller"]) == (created["metadata"]["uid"], True)

    async def waiting_said() -> Obj | None:
        found = await env.get_job(KIND, ns, "train")
        conditions = ((found or {}).get("status") or {}).get("conditions") or []
        if conditions and "volcano admits PodGroup train" in conditions[0].get("message", ""):
            return found
        return None

    await poll(waiting_said, what="the Created condition saying what the job waits for")
    await set_phase(env, PODGROUPS_VOLCANO, ns, "train", "Pending")
    await poll(lambda: events_of(env, ns, "WaitingForPodGroup"), what="WaitingForPodGroup")
    for _ in range(10):  # a second after the phase change woke the job: still no pod
        assert await env.pods(ns) == []
        await asyncio.sleep(0.1)
    current = await env.get_job(KIND, ns, "train")
    assert current is not None and condition_types(current) == ["Created"]
    assert not has_condition(current, "Running")

    await set_phase(env, PODGROUPS_VOLCANO, ns, "train", "Inqueue")

    async def three_pods() -> list[Obj]:
        pods = await env.pods(ns)
        return pods if len(pods) == 3 else []

    pods = await poll(three_pods, what="pods once the PodGroup is Inqueue")
    for pod in pods:
        assert pod["spec"]["schedulerName"] == "volcano"
        annotations = pod["metadata"]["annotations"]
        assert annotations["scheduling.k8s.io/group-name"] == "train"
        rtype = pod["metadata"]["labels"]["training.kubeflow.org/replica-type"]
        assert annotations["volcano.sh/task-spec"] == rtype
    # the operator's update of the PodGroup (none was needed) kept the scheduler's phase
    podgroup = await wait_podgroup(env, PODGROUPS_VOLCANO, ns, "train")
    assert podgroup["status"]["phase"] == "Inqueue"

    await finish_pods(env, ns)
    done = await env.wait_condition(KIND, ns, "train", "Succeeded")
    assert done["status"]["conditions"][0]["message"] == "PyTorchJob train is created."
    await wait_podgroup_gone(env, PODGROUPS_VOLCANO, ns, "train")
    await poll(lambda: events_of(env, ns, "SuccessfulDeletePodGroup"), what="delete event")


async def test_scheduler_plugins_pods_at_once_and_no_rewrite_while_unchanged(
    plugins: Env,
) -> None:
    env = plugins
    ns = await env.namespace("plugins")
    await env.create_job(
        pytorch("train", ns, run_policy={"schedulingPolicy": {"scheduleTimeoutSeconds": 60}})
    )
    podgroup = await wait_podgroup(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train")
    assert podgroup["spec"] == {
        "minMember": 3,
        "minResources": {"cpu": "2", "memory": "3Gi"},
        "scheduleTimeoutSeconds": 60,
    }

    async def three_pods() -> list[Obj]:
        pods = await env.pods(ns)
        return pods if len(pods) == 3 else []

    pods = await poll(three_pods, what="pods at once")
    for pod in pods:
        assert pod["spec"]["schedulerName"] == SP_SCHEDULER
        assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "train"
    # the scheduler writes the group's status; then reconciles with nothing to change in the
    # PodGroup (pods start running, the job is labelled): the operator never writes it again
    await set_phase(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train", "Scheduling")
    version = (await wait_podgroup(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train"))["metadata"][
        "resourceVersion"
    ]
    writes_before = await _podgroup_writes(env)
    for pod in pods[:2]:
        await env.client.patch(
            PODS, ns, pod["metadata"]["name"], {"status": {"phase": "Running"}},
            subresource="status",
        )  # fmt: skip
    await env.client.patch(kubeflow(KIND), ns, "train", {"metadata": {"labels": {"a": "b"}}})
    await env.wait_condition(KIND, ns, "train", "Running")
    await asyncio.sleep(1.0)  # the reconciles those events woke
    after = await wait_podgroup(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train")
    assert after["metadata"]["resourceVersion"] == version, "the PodGroup was written again"
    assert after["status"] == {"phase": "Scheduling"}
    assert await _podgroup_writes(env) == writes_before


async def _podgroup_writes(env: Env) -> int:
    """Creates, updates and patches of podgroups the API server answered (its metrics)."""
    counts = await env.request_counts()
    return sum(
        n
        for key, n in counts.items()
        if key.split(" ")[0] in ("POST", "PUT", "CREATE", "UPDATE")
        and key.split(" ")[1] == "podgroups"
    )


async def test_a_suspended_jobs_podgroup_is_deleted_and_comes_back_on_resume(
    plugins: Env,
) -> None:
    env = plugins
    ns = await env.namespace("suspend")
    await env.create_job(pytorch("train", ns))
    await wait_podgroup(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train")
    await env.client.patch(kubeflow(KIND), ns, "train", {"spec": {"runPolicy": {"suspend": True}}})
    await env.wait_condition(KIND, ns, "train", "Suspended")
    await wait_podgroup_gone(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train")
    await poll(lambda: events_of(env, ns, "SuccessfulDeletePodGroup"), what="delete event")
    await env.client.patch(kubeflow(KIND), ns, "train", {"spec": {"runPolicy": {"suspend": False}}})
    await wait_podgroup(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "train")
