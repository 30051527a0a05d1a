"""PyTorchJob end to end on the embedded cluster with simulated nodes and the operator in-process:
the exact pods (names, labels, owner references, env, init container), headless services, the
condition sequence and replica statuses, and the controller's fixed behaviours (active deadline
with no other event, TTL, backoff counting re-creations, no duplicate pod across an operator
restart, invalid job next to a valid one, managedBy, suspend/resume, cleanPodPolicy)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import (
    SIM,
    Env,
    condition_types,
    env_of,
    has_condition,
    job_manifest,
    metric_value,
    open_env,
    poll,
)

from kubetrain.informers.resource import PODS, kubeflow

# http_api: every test also runs under --apiserver=real (a real control plane + simulated nodes),
# except those marked embedded_only.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "PyTorchJob"


def pytorch(name: str, ns: str, replicas: dict[str, int] | None = None, **kw: object) -> dict:
    return job_manifest(
        KIND,
        "pytorchReplicaSpecs",
        "pytorch",
        replicas or {"Master": 1, "Worker": 2},
        name=name,
        namespace=ns,
        **kw,  # type: ignore[arg-type]
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """Under ``--apiserver=real`` a real control plane with simulated nodes; only the tests
    marked ``http_api`` run there."""
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("pytorchjob",))
        yield e


async def test_pods_services_conditions_to_succeeded(env: Env) -> None:
    ns = await env.namespace("pt")
    created = await env.create_job(pytorch("train", ns))
    job = await env.wait_condition(KIND, ns, "train", "Succeeded")
    assert condition_types(job) == ["Created", "Running", "Succeeded"]
    assert job["status"]["replicaStatuses"]["Master"]["succeeded"] == 1
    assert job["status"]["replicaStatuses"]["Worker"]["succeeded"] == 2
    assert job["status"]["completionTime"]

    pods = await env.pods(ns)
    assert [p["metadata"]["name"] for p in pods] == [
        "train-master-0",
        "train-worker-0",
        "train-worker-1",
    ]
    uid = created["metadata"]["uid"]
    for pod in pods:
        (ref,) = pod["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "kubeflow.org/v1",
            "kind": KIND,
            "name": "train",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    master, w0, w1 = pods
    assert master["metadata"]["labels"] == {
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/job-name": "train",
        "training.kubeflow.org/replica-type": "master",
        "training.kubeflow.org/replica-index": "0",
        "training.kubeflow.org/job-role": "master",
    }
    assert "training.kubeflow.org/job-role" not in w0["metadata"]["labels"]
    e = env_of(w1, "pytorch")
    assert e["MASTER_ADDR"] == "train-master-0"
    assert e["MASTER_PORT"] == "23456"
    assert e["WORLD_SIZE"] == "3"
    assert e["RANK"] == "2"
    assert env_of(master, "pytorch")["RANK"] == "0"
    assert [c["name"] for c in w0["spec"].get("initContainers") or []] == ["init-pytorch"]
    assert not master["spec"].get("initContainers")

    services = await env.services(ns)
    assert [s["metadata"]["name"] for s in services] == [
        "train-master-0",
        "train-worker-0",
        "train-worker-1",
    ]
    for svc in services:
        assert svc["spec"]["clusterIP"] == "None"
        assert svc["spec"]["ports"][0]["port"] == 23456

    registry = env.running.registry  # type: ignore[union-attr]
    labels = {"job_namespace": ns, "framework": "pytorch"}
    assert metric_value(registry, "training_operator_jobs_created_total", labels) == 1
    assert metric_value(registry, "training_operator_jobs_successful_total", labels) == 1
    reasons = {ev["reason"] for ev in await env.events(ns)}
    assert {"SuccessfulCreatePod", "SuccessfulCreateService", "PyTorchJobSucceeded"} <= reasons


async def test_active_deadline_fires_without_other_events(env: Env) -> None:
    ns = await env.namespace("deadline")
    await env.create_job(
        pytorch("slow", ns, {"Master": 1}, run_seconds=60, run_policy={"activeDeadlineSeconds": 2})
    )
    job = await env.wait_condition(KIND, ns, "slow", "Failed", timeout=10)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert "deadline" in failed["message"]


async def test_ttl_deletes_job_about_on_time(env: Env) -> None:
    ns = await env.namespace("ttl")
    await env.create_job(
        pytorch("short", ns, {"Master": 1}, run_policy={"ttlSecondsAfterFinished": 1})
    )
    await env.wait_condition(KIND, ns, "short", "Succeeded")

    async def gone() -> bool:
        return await env.get_job(KIND, ns, "short") is None

    await poll(gone, timeout=4, what="TTL deletion")


async def test_suspend_then_resume(env: Env) -> None:
    ns = await env.namespace("suspend")
    await env.create_job(
        pytorch("s", ns, {"Master": 1}, run_seconds=0.5, run_policy={"suspend": True})
    )
    job = await env.wait_condition(KIND, ns, "s", "Suspended")
    assert await env.pods(ns) == []
    job["spec"]["runPolicy"]["suspend"] = False
    await env.client.update(kubeflow(KIND), job)
    job = await env.wait_condition(KIND, ns, "s", "Succeeded")
    suspended = next(c for c in job["status"]["conditions"] if c["type"] == "Suspended")
    assert suspended["status"] == "False"


async def test_managed_by_other_gets_no_status(env: Env) -> None:
    ns = await env.namespace("managed")
    await env.create_job(
        pytorch("m", ns, {"Master": 1}, run_policy={"managedBy": "kueue.x-k8s.io/multikueue"})
    )
    ok = pytorch("ok", ns, {"Master": 1})
    await env.create_job(ok)
    await env.wait_condition(KIND, ns, "ok", "Succeeded")
    job = await env.get_job(KIND, ns, "m")
    assert job is not None and not job.get("status", {}).get("conditions")
    assert [p["metadata"]["name"] for p in await env.pods(ns)] == ["ok-master-0"]


async def test_clean_pod_policy_all_deletes_pods(env: Env) -> None:
    ns = await env.namespace("clean")
    await env.create_job(
        pytorch("c", ns, {"Master": 1, "Worker": 1}, run_policy={"cleanPodPolicy": "All"})
    )
    await env.wait_condition(KIND, ns, "c", "Succeeded")

    async def cleaned() -> bool:
        pods = await env.pods(ns)
        return all(p["metadata"].get("deletionTimestamp") for p in pods)

    await poll(cleaned, timeout=5, what="pods deleted by cleanPodPolicy All")


async def test_backoff_limit_counts_recreations(env: Env) -> None:
    ns = await env.namespace("backoff")
    # ExitCode policy, exit 137 (retryable): the pod is re-created until backoffLimit 2.
    await env.create_job(
        pytorch(
            "b",
            ns,
            {"Master": 1},
            restart_policy="ExitCode",
            annotations={"Master": {SIM + "exit-code": "137"}},
            run_seconds=0.1,
            run_policy={"backoffLimit": 2},
        )
    )
    job = await env.wait_condition(KIND, ns, "b", "Failed", timeout=15)
    annotations = job["metadata"].get("annotations") or {}
    assert any(v == "2" for k, v in annotations.items() if "restart" in k), annotations
    assert "Restarting" in condition_types(job)
    registry = env.running.registry  # type: ignore[union-attr]
    labels = {"job_namespace": ns, "framework": "pytorch"}
    assert metric_value(registry, "training_operator_jobs_restarted_total", labels) == 2


async def test_invalid_job_fails_with_field_named_while_valid_succeeds(env: Env) -> None:
    ns = await env.namespace("invalid")
    bad = pytorch("bad", ns, {"Master": 2})  # Master replicas must be 1
    await env.create_job(bad)
    await env.create_job(pytorch("good", ns, {"Master": 1}))
    job = await env.wait_condition(KIND, ns, "bad", "Failed")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert "pytorchReplicaSpecs" in failed["message"] and "Master" in failed["message"]
    await env.wait_condition(KIND, ns, "good", "Succeeded")
    warnings = [
        e
        for e in await env.events(ns)
        if e["type"] == "Warning" and e["involvedObject"]["name"] == "bad"
    ]
    assert any("FailedValidation" in e["reason"] for e in warnings)
    assert [p["metadata"]["name"] for p in await env.pods(ns)] == ["good-master-0"]


async def test_no_duplicate_pod_across_operator_restart(env: Env) -> None:
    ns = await env.namespace("restart")
    await env.stop_operator()
    # Simulate "created, then the operator died before seeing it": the pod of index 0 exists
    # (as the dead operator created it); a fresh operator with a fresh cache must adopt it.
    job = await env.create_job(pytorch("r", ns, {"Master": 1, "Worker": 2}, run_seconds=0.5))
    from kubetrain.reconcilers.api.defaults import default_job
    from kubetrain.reconcilers.common.pods import build_pod
    from kubetrain.reconcilers.kinds import ADAPTERS
    from kubetrain.reconcilers.kinds.base import DomainOptions

    body, _ = build_pod(
        ADAPTERS[KIND], default_job(ADAPTERS[KIND].kind, job), "Worker", 0, options=DomainOptions()
    )
    await env.client.create(PODS, body)
    await env.start_operator(enable_schemes=("pytorchjob",))
    await env.wait_condition(KIND, ns, "r", "Succeeded")
    names = [p["metadata"]["name"] for p in await env.pods(ns)]
    assert names == ["r-master-0", "r-worker-0", "r-worker-1"]
    assert has_condition(await env.get_job(KIND, ns, "r") or {}, "Succeeded")


@pytest.mark.embedded_only(
    reason="a real kube-controller-manager's GC removed the old job's pod only after ~40 s "
    "(it ran to its end at 30 s first; cause not proven, likely the GC discovers a new CRD kind "
    "late); the test allows 20 s"
)
async def test_recreate_same_name_does_not_stall(env: Env) -> None:
    ns = await env.namespace("recreate")
    await env.create_job(pytorch("same", ns, {"Master": 1}, run_seconds=30))

    async def running() -> bool:
        return any(p["metadata"]["name"] == "same-master-0" for p in await env.pods(ns))

    await poll(running, what="first pod")
    await env.client.delete(kubeflow(KIND), ns, "same", propagation_policy="Background")

    async def job_gone() -> bool:
        return await env.get_job(KIND, ns, "same") is None

    await poll(job_gone, what="job deleted")
    new = await env.create_job(pytorch("same", ns, {"Master": 1}, run_seconds=0.2))
    await env.wait_condition(KIND, ns, "same", "Succeeded", timeout=20)
    (pod,) = [p for p in await env.pods(ns) if not p["metadata"].get("deletionTimestamp")]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == new["metadata"]["uid"]
