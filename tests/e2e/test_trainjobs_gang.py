"""Gang scheduling of TrainJobs end to end: a TrainingRuntime whose ``podGroupPolicy`` is
``coscheduling`` or ``volcano``, a TrainJob on it, the PodGroup the TrainJob controller applies
beside the JobSet (field by field: minMember counting the initializer, minResources = requests x
count, scheduleTimeoutSeconds; Volcano's queue from the runtime's
``scheduling.volcano.sh/queue-name`` annotation and the pods' priorityClassName), the pods'
group label or annotation, and the simulated gang scheduler binding the group so the TrainJob
completes.

Trainer takes the flavour from the runtime, not from the operator's ``--gang-scheduler-name``
(the v1 jobs' flag), so the operator runs without it. The PodGroup CRDs are the embedded
cluster's own (``cluster/podgroups.py``); under ``--apiserver=real`` the test installs the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import yaml
from conformance.outside_manager import install_crds
from jobkit_e2e import Env, poll
from trainjob_e2e import Obj, condition, get, open_trainer_env, run_kubectl, trainjob

from kubetrain.cluster.podgroups import DEFAULT_QUEUE, gang_crds
from kubetrain.informers.resource import (
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    PODS,
    ResourceRef,
)
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.resources import TRAINING_RUNTIMES, TRAINJOBS

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

QUEUES = ResourceRef("scheduling.volcano.sh", "v1beta1", "queues", False, "Queue")
ANCESTOR = "trainer.kubeflow.org/trainjob-ancestor-step"
RUN_SECONDS = "sim.kubetrain.dev/run-seconds"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory, nodes=2):
        if e.real:  # the embedded cluster serves these out of the box
            await install_crds(e.client, gang_crds())
            await create_if_absent(e, QUEUES, DEFAULT_QUEUE)
        await create_if_absent(
            e, QUEUES, {"apiVersion": QUEUES.api_version, "kind": "Queue",
                        "metadata": {"name": "research"}, "spec": {"weight": 1}},
        )  # fmt: skip
        await e.priority_classes({"trainer-gang-high": 1000})
        yield e


async def create_if_absent(env: Env, ref: ResourceRef, obj: Obj) -> None:
    try:
        await env.client.create(ref, obj)
    except ApiStatusError as e:
        if e.code != 409:
            raise


def gang_runtime(name: str, ns: str, scheduler: str, policy: Obj, **pod_spec: str) -> Obj:
    """An initializer (1 pod: 1 cpu, 1Gi) without dependsOn, so the whole group exists at once,
    and a torch trainer of 2 nodes (500m, 2Gi each); every pod under ``scheduler``."""

    def job(job_name: str, ancestor: str, cpu: str, memory: str) -> Obj:
        return {
            "name": job_name,
            "template": {
                "metadata": {"labels": {ANCESTOR: ancestor}},
                "spec": {
                    "template": {
                        "metadata": {"annotations": {RUN_SECONDS: "0.5"}},
                        "spec": {
                            "schedulerName": scheduler,
                            **pod_spec,
                            "containers": [
                                {
                                    "name": job_name,
                                    "image": "busybox:1",
                                    "resources": {"requests": {"cpu": cpu, "memory": memory}},
                                }
                            ],
                        },
                    }
                },
            },
        }

    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainingRuntime",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "mlPolicy": {"numNodes": 2, "torch": {}},
            "podGroupPolicy": policy,
            "template": {
                "spec": {
                    "replicatedJobs": [
                        job("dataset-initializer", "dataset-initializer", "1", "1Gi"),
                        job("node", "trainer", "500m", "2Gi"),
                    ]
                }
            },
        },
    }


async def run_on(env: Env, ns: str, runtime: Obj) -> None:
    await env.client.create(TRAINING_RUNTIMES, runtime)
    job = trainjob(
        "gang", ns, runtimeRef={"name": runtime["metadata"]["name"], "kind": "TrainingRuntime"}
    )
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr


async def wait_complete(env: Env, ns: str) -> Obj:
    async def complete() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, "gang")
        if tj is not None and condition(tj, "Failed"):
            raise AssertionError(f"TrainJob failed: {tj['status']}")
        return tj if tj is not None and condition(tj, "Complete") else None

    done: Obj = await poll(complete, timeout=90, what="TrainJob Complete")
    return done


def owned_by_the_trainjob(podgroup: Obj, trainjob_obj: Obj) -> None:
    (owner,) = podgroup["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "name": "gang",
        "uid": trainjob_obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def group_pods(env: Env, ns: str) -> list[Obj]:
    pods = [
        p for p in await env.client.list_all(PODS, ns) if p["metadata"]["name"].startswith("gang-")
    ]
    assert len(pods) == 3, [p["metadata"]["name"] for p in pods]
    return pods


async def test_coscheduling_podgroup_label_and_completion(env: Env) -> None:
    ns = await env.namespace("tj-cosched")
    policy = {"coscheduling": {"scheduleTimeoutSeconds": 30}}
    await run_on(env, ns, gang_runtime("cosched", ns, "scheduler-plugins-scheduler", policy))

    podgroup = await poll(
        lambda: get(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "gang"), timeout=30, what="PodGroup"
    )
    assert podgroup["spec"] == {
        "minMember": 3,  # the initializer counts
        "minResources": {"cpu": "2", "memory": "5Gi"},  # 1 + 2 x 500m; 1Gi + 2 x 2Gi
        "scheduleTimeoutSeconds": 30,
    }
    tj = await get(env, TRAINJOBS, ns, "gang")
    assert tj is not None
    owned_by_the_trainjob(podgroup, tj)
    assert await get(env, PODGROUPS_VOLCANO, ns, "gang") is None

    await wait_complete(env, ns)
    for pod in await group_pods(env, ns):
        assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "gang"
        assert "scheduling.k8s.io/group-name" not in (pod["metadata"].get("annotations") or {})
        assert pod["spec"]["nodeName"]
    if not env.real:  # the real tier's simulator started before the test installed the CRDs
        # The simulated coscheduling plugin placed the group and followed it to the end.
        done = await get(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "gang")
        assert done is not None
        assert (done.get("status") or {}).get("phase") in ("Running", "Finished")


async def test_volcano_podgroup_queue_priority_annotation_and_completion(env: Env) -> None:
    ns = await env.namespace("tj-volcano")
    runtime = gang_runtime(
        "vc", ns, "volcano", {"volcano": {}}, priorityClassName="trainer-gang-high"
    )
    runtime["spec"]["template"]["metadata"] = {
        "annotations": {"scheduling.volcano.sh/queue-name": "research"}
    }
    await run_on(env, ns, runtime)

    podgroup = await poll(
        lambda: get(env, PODGROUPS_VOLCANO, ns, "gang"), timeout=30, what="Volcano PodGroup"
    )
    assert podgroup["spec"] == {
        "minMember": 3,
        "minResources": {"cpu": "2", "memory": "5Gi"},
        "queue": "research",  # from the runtime template's annotation
        "priorityClassName": "trainer-gang-high",
    }
    tj = await get(env, TRAINJOBS, ns, "gang")
    assert tj is not None
    owned_by_the_trainjob(podgroup, tj)
    assert await get(env, PODGROUPS_SCHEDULER_PLUGINS, ns, "gang") is None

    await wait_complete(env, ns)
    for pod in await group_pods(env, ns):
        assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "gang"
        assert "scheduling.x-k8s.io/pod-group" not in (pod["metadata"].get("labels") or {})
        assert pod["spec"]["nodeName"]
    if not env.real:  # as above: the embedded simulator gang-schedules, and says so
        done = await get(env, PODGROUPS_VOLCANO, ns, "gang")
        assert done is not None
        assert (done.get("status") or {}).get("phase") in ("Running", "Completed")
