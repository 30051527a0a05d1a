"""TrainJobs end to end (first slice of the Trainer v2 API): ``kubectl apply`` of a TrainJob on
a built-in ClusterTrainingRuntime, the TrainJob controller's JobSet, the JobSet controller's Jobs
and the simulated nodes' pods, and the status that comes back. On the embedded cluster (its
``cluster/jobset`` and Job controllers) and, under ``--apiserver=real``, on a real kube-apiserver
with kube-controller-manager and the real JobSet v0.12 controller when it is built.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
import yaml
from jobkit_e2e import Env, poll
from trainjob_e2e import Obj, condition, get, open_trainer_env, run_kubectl, trainjob

from kubetrain.informers.resource import PODS
from kubetrain.reconcilers.trainer.resources import JOBSETS, TRAINING_RUNTIMES, TRAINJOBS

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory):
        yield e


async def test_a_torch_trainjob_runs_as_a_jobset_and_completes(env: Env) -> None:
    ns = await env.namespace("tj")
    job = trainjob(
        "mnist",
        ns,
        trainer={
            "numNodes": 2,
            "command": ["torchrun", "train.py"],
            "resourcesPerNode": {"requests": {"cpu": "2"}},
        },
    )
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr

    jobset = await poll(lambda: get(env, JOBSETS, ns, "mnist"), timeout=30, what="the JobSet")
    owner = jobset["metadata"]["ownerReferences"][0]
    assert (owner["apiVersion"], owner["kind"], owner["name"], owner["controller"]) == (
        "trainer.kubeflow.org/v1alpha1",
        "TrainJob",
        "mnist",
        True,
    )
    (node,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == "node"]
    job_spec = node["template"]["spec"]
    assert job_spec["parallelism"] == 2 and job_spec["completions"] == 2
    container = next(c for c in job_spec["template"]["spec"]["containers"] if c["name"] == "node")
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["PET_NNODES"]["value"] == "2"
    assert env_vars["PET_NPROC_PER_NODE"]["value"] == "2"  # auto: the cpu request, no GPU
    assert env_vars["PET_MASTER_ADDR"]["value"] == "mnist-node-0-0.mnist"
    assert env_vars["PET_MASTER_PORT"]["value"] == "29500"
    assert env_vars["PET_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert container["command"] == ["torchrun", "train.py"]
    assert container["resources"]["requests"]["cpu"] == "2"

    async def complete() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, "mnist")
        return tj if tj is not None and condition(tj, "Complete") else None

    done = await poll(complete, timeout=60, what="TrainJob Complete")
    assert condition(done, "Complete")["reason"] == "AllJobsCompleted"
    (node_status,) = done["status"]["jobsStatus"]
    assert node_status["name"] == "node" and node_status["succeeded"] == 1
    pods = [
        p
        for p in await env.client.list_all(PODS, ns)
        if p["metadata"]["name"].startswith("mnist-node-0")
    ]
    assert len(pods) == 2
    assert {p["spec"]["hostname"] for p in pods} == {"mnist-node-0-0", "mnist-node-0-1"}
    listed = await run_kubectl(env, "get", "trainjobs", "-n", ns, "-o", "json")
    assert json.loads(listed.stdout)["items"][0]["status"]["conditions"][-1]["type"] == "Complete"


async def test_suspend_shows_suspended_and_resume_runs_it(env: Env) -> None:
    """Kueue's path (suspended at creation, resumed on admission): kubectl's STATE column, the
    phase and the kubeflow SDK's status show Suspended, then Running, then Complete; after the
    resume no condition is left for the SDK to stop at ``Created`` (sdk#803, trainer#3666)."""
    ns = await env.namespace("tj-suspend")
    run_seconds = {"sim.kubetrain.dev/run-seconds": "8"}
    pod_patch = {"template": {"spec": {"template": {"metadata": {"annotations": run_seconds}}}}}
    job = trainjob(
        "held",
        ns,
        suspend=True,
        trainer={"numNodes": 2},
        runtimePatches=[
            {
                "manager": "example.com/e2e",
                "trainingRuntimeSpec": {
                    "template": {"spec": {"replicatedJobs": [{"name": "node", **pod_patch}]}}
                },
            }
        ],
    )
    assert (await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))).returncode == 0

    async def in_phase(phase: str) -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, "held")
        return tj if tj is not None and (tj.get("status") or {}).get("phase") == phase else None

    tj = await poll(lambda: in_phase("Suspended"), timeout=30, what="Suspended")
    assert condition(tj, "Suspended")["reason"] == "Suspended"
    jobset = await poll(lambda: get(env, JOBSETS, ns, "held"), what="the suspended JobSet")
    assert jobset["spec"]["suspend"] is True
    assert [p for p in await env.client.list_all(PODS, ns)] == []
    assert await state_column(env, ns, "held") == "Suspended"

    patch = '{"spec":{"suspend":false}}'
    out = await run_kubectl(env, "patch", "trainjob", "held", "-n", ns, "--type=merge", "-p", patch)
    assert out.returncode == 0, out.stderr

    running = await poll(lambda: in_phase("Running"), timeout=30, what="Running after resume")
    assert "conditions" not in running["status"]
    assert running["status"]["startTime"] >= tj["metadata"]["creationTimestamp"]
    assert await state_column(env, ns, "held") == "Running"
    if sdk_installed():
        assert await asyncio.to_thread(sdk_status, env.cluster.kubeconfig_path, ns, "held") == (
            "Running"
        )

    done = await poll(lambda: in_phase("Complete"), timeout=60, what="Complete after resume")
    assert condition(done, "Complete")["reason"] == "AllJobsCompleted"
    assert [c["type"] for c in done["status"]["conditions"]] == ["Complete"]
    assert await state_column(env, ns, "held") == "Complete"


async def state_column(env: Env, ns: str, name: str) -> str:
    """``kubectl get trainjob``'s STATE column."""
    out = await run_kubectl(env, "get", "trainjob", name, "-n", ns, "--no-headers")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[1]


def sdk_installed() -> bool:
    try:
        import kubeflow.trainer  # noqa: F401
    except ImportError:
        return False
    return True


def sdk_status(kubeconfig: str, ns: str, name: str) -> str:
    """What ``TrainerClient().get_job`` reports (the kubeflow SDK 0.5.0, unchanged)."""
    from kubeflow.common.types import KubernetesBackendConfig
    from kubeflow.trainer import TrainerClient

    client = TrainerClient(KubernetesBackendConfig(config_file=kubeconfig, namespace=ns))
    return str(client.get_job(name).status)


async def test_the_deadline_fails_the_trainjob_and_deletes_its_jobset(env: Env) -> None:
    ns = await env.namespace("tj-deadline")
    job = trainjob("late", ns, activeDeadlineSeconds=2, trainer={"numNodes": 1})
    job["spec"]["runtimePatches"] = [
        {
            "manager": "example.com/test",
            "trainingRuntimeSpec": {
                "template": {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "name": "node",
                                "template": {
                                    "spec": {
                                        "template": {
                                            "metadata": {
                                                "annotations": {
                                                    "sim.kubetrain.dev/run-seconds": "3600"
                                                }
                                            }
                                        }
                                    }
                                },
                            }
                        ]
                    }
                }
            },
        }
    ]
    assert (await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))).returncode == 0

    async def failed() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, "late")
        return tj if tj is not None and condition(tj, "Failed") else None

    tj = await poll(failed, timeout=30, what="DeadlineExceeded")
    assert condition(tj, "Failed")["reason"] == "DeadlineExceeded"

    async def jobset_gone() -> bool:
        return await get(env, JOBSETS, ns, "late") is None

    await poll(jobset_gone, timeout=30, what="the JobSet deleted")
    await asyncio.sleep(1)  # a finished TrainJob never builds its JobSet again (trainer#3737)
    assert await get(env, JOBSETS, ns, "late") is None


async def test_a_missing_runtime_is_reported_and_nothing_is_built(env: Env) -> None:
    ns = await env.namespace("tj-missing")
    job = trainjob("orphan", ns)
    job["spec"]["runtimeRef"] = {"name": "no-such-runtime"}
    created = await env.client.create(TRAINJOBS, job)
    assert created["spec"]["runtimeRef"]["kind"] == "ClusterTrainingRuntime"

    async def warned() -> list[Obj]:
        return [
            e
            for e in await env.events(ns)
            if e["involvedObject"]["name"] == "orphan"
            and e["reason"] == "TrainJobResourcesCreationFailed"
        ]

    (event, *_) = await poll(warned, timeout=30, what="the Warning event")
    assert "no-such-runtime" in event["message"]
    assert await get(env, JOBSETS, ns, "orphan") is None


async def test_a_failed_trainjob_is_not_rerun_after_the_jobset_ttl_deletes_its_jobset(
    env: Env,
) -> None:
    """trainer#3737: Trainer re-created the JobSet of a failed TrainJob once the JobSet's
    ``ttlSecondsAfterFinished`` had deleted it, so the job ran again with a fresh restart
    budget. Here the node fails, the JobSet fails and is deleted by its TTL, and the TrainJob
    stays Failed with no JobSet and no new pod."""
    ns = await env.namespace("tj-ttl")
    runtime: Obj = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainingRuntime",
        "metadata": {"name": "torch-fails", "namespace": ns},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {}},
            "template": {
                "spec": {
                    "ttlSecondsAfterFinished": 1,
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {
                                    "labels": {
                                        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
                                    }
                                },
                                "spec": {
                                    "backoffLimit": 0,
                                    "template": {
                                        "metadata": {
                                            "annotations": {
                                                "sim.kubetrain.dev/run-seconds": "0.5",
                                                "sim.kubetrain.dev/exit-code": "1",
                                            }
                                        },
                                        "spec": {
                                            "containers": [{"name": "node", "image": "busybox"}]
                                        },
                                    },
                                },
                            },
                        }
                    ],
                }
            },
        },
    }
    await env.client.create(TRAINING_RUNTIMES, runtime)
    jobset_uids: set[str] = set()  # every JobSet the namespace ever had

    async def follow_jobsets() -> None:
        query = {"watch": "true", "timeoutSeconds": "300"}
        async with env.client.stream_lines(JOBSETS.collection_path(ns), query=query) as lines:
            async for line in lines:
                jobset_uids.add(orjson.loads(line)["object"]["metadata"]["uid"])

    watcher = asyncio.create_task(follow_jobsets())
    job = trainjob(
        "once", ns, runtimeRef={"name": "torch-fails", "kind": "TrainingRuntime"}, trainer={}
    )
    assert (await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))).returncode == 0

    async def failed() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, "once")
        return tj if tj is not None and condition(tj, "Failed") else None

    await poll(failed, timeout=60, what="TrainJob Failed")

    async def jobset_gone() -> bool:
        return await get(env, JOBSETS, ns, "once") is None

    # a real kube-apiserver's garbage collector finishes the JobSet's Foreground deletion only
    # after its discovery sync has seen the JobSet CRD (up to 30 s)
    try:
        await poll(jobset_gone, timeout=60, what="the JobSet deleted by its TTL")
        await asyncio.sleep(3)  # time for a controller that re-creates it to do so
    finally:
        watcher.cancel()
    assert len(jobset_uids) == 1, jobset_uids  # built once, never again
    assert await get(env, JOBSETS, ns, "once") is None
    tj = await get(env, TRAINJOBS, ns, "once")
    assert tj is not None and condition(tj, "Failed") is not None
    assert condition(tj, "Complete") is None
