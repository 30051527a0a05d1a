"""batch/v1 Jobs run end to end: what a client sees of a Job and its pods on a cluster with
simulated nodes (the embedded cluster's ``kubetrain.cluster.kcm`` Job and TTL controllers; under
``--apiserver=real`` kube-controller-manager's own, ``tests/conformance/controlplane.py``).

Each test has its own namespace; the simulator's annotations (``sim.kubetrain.dev/``) make the
pods succeed, fail with an exit code, or run long.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import SIM, Env, open_env, poll

from kubetrain.informers.resource import PODS, ResourceRef
from kubetrain.informers.transport import ApiStatusError

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
JOBS = ResourceRef("batch", "v1", "jobs", True, "Job")
FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(
        nodes=4, apiserver=selected_apiserver(request.config), kube_controllers=True
    ):
        yield e


def batch_job(
    name: str,
    ns: str,
    *,
    run_seconds: float = 0.3,
    exit_code: int | None = None,
    restart_policy: str = "Never",
    annotations: dict[str, str] | None = None,
    pod_spec: Obj | None = None,
    **spec: Any,
) -> Obj:
    pod_annotations = {SIM + "run-seconds": str(run_seconds), **(annotations or {})}
    if exit_code is not None:
        pod_annotations[SIM + "exit-code"] = str(exit_code)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "template": {
                "metadata": {"annotations": pod_annotations},
                "spec": {
                    "restartPolicy": restart_policy,
                    "containers": [{"name": "c", "image": "busybox:1.36"}],
                    **(pod_spec or {}),
                },
            },
            **spec,
        },
    }


async def get_job(env: Env, ns: str, name: str) -> Obj | None:
    try:
        return await env.client.get(JOBS, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


def conditions(job: Obj) -> list[tuple[str, str, str]]:
    return [
        (c["type"], c["status"], c.get("reason", ""))
        for c in (job.get("status") or {}).get("conditions") or []
    ]


async def wait_condition(env: Env, ns: str, name: str, ctype: str, timeout: float = 40) -> Obj:
    async def check() -> Obj | None:
        job = await get_job(env, ns, name)
        if job is not None and any(t == ctype and s == "True" for t, s, _ in conditions(job)):
            return job
        return None

    result: Obj = await poll(check, timeout=timeout, interval=0.1, what=f"Job {ns}/{name} {ctype}")
    return result


async def job_pods(env: Env, ns: str) -> list[Obj]:
    return await env.pods(ns)


async def reasons(env: Env, ns: str) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in await env.events(ns)]


async def wait_events(env: Env, ns: str, reason: str, count: int = 1) -> list[tuple[str, str, str]]:
    async def check() -> list[tuple[str, str, str]] | None:
        found = [r for r in await reasons(env, ns) if r[1] == reason]
        return found if len(found) >= count else None

    result: list[tuple[str, str, str]] = await poll(
        check, timeout=15, interval=0.1, what=f"{count} {reason} events"
    )
    return result


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_non_indexed_completions_and_parallelism(env: Env) -> None:
    ns = await env.namespace("nonidx")
    created = await env.client.create(
        JOBS, batch_job("work", ns, completions=3, parallelism=2, run_seconds=0.3)
    )
    uid = created["metadata"]["uid"]
    job = await wait_condition(env, ns, "work", "Complete")
    status = job["status"]
    assert conditions(job) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert status["succeeded"] == 3 and not status.get("failed") and not status.get("active")
    assert status["ready"] == 0 and status["terminating"] == 0
    assert status["uncountedTerminatedPods"] == {}
    assert stamp(status["completionTime"]) >= stamp(status["startTime"])
    pods = await job_pods(env, ns)
    assert len(pods) == 3
    for pod in pods:
        meta = pod["metadata"]
        assert re.fullmatch(r"work-[a-z0-9]{5}", meta["name"]), meta["name"]
        assert meta["labels"]["batch.kubernetes.io/job-name"] == "work"
        assert meta["labels"]["job-name"] == "work"
        assert meta["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert meta["labels"]["controller-uid"] == uid
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": "work",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert FINALIZER not in (meta.get("finalizers") or [])  # counted: finalizer removed
        assert pod["status"]["phase"] == "Succeeded"
        assert INDEX not in meta.get("annotations", {})
    events = await wait_events(env, ns, "Completed")
    assert events == [("Normal", "Completed", "Job completed")]
    created_events = await wait_events(env, ns, "SuccessfulCreate", 3)
    assert {m for _, _, m in created_events} == {
        f"Created pod: {p['metadata']['name']}" for p in pods
    }


async def test_running_pods_carry_the_finalizer_and_count_as_active_and_ready(env: Env) -> None:
    ns = await env.namespace("running")
    await env.client.create(
        JOBS, batch_job("long", ns, parallelism=2, completions=2, run_seconds=30)
    )

    async def running() -> Obj | None:
        job = await get_job(env, ns, "long")
        status = (job or {}).get("status") or {}
        return job if status.get("active") == 2 and status.get("ready") == 2 else None

    await poll(running, timeout=30, what="2 active and ready pods")
    pods = await job_pods(env, ns)
    assert len(pods) == 2
    assert all(FINALIZER in p["metadata"]["finalizers"] for p in pods)


async def test_indexed_pods_hostnames_labels_and_env(env: Env) -> None:
    ns = await env.namespace("indexed")
    await env.client.create(
        JOBS,
        batch_job(
            "idx",
            ns,
            completionMode="Indexed",
            completions=3,
            parallelism=3,
            pod_spec={"subdomain": "workers"},
        ),
    )
    job = await wait_condition(env, ns, "idx", "Complete")
    assert job["status"]["completedIndexes"] == "0-2"
    assert job["status"]["succeeded"] == 3
    pods = await job_pods(env, ns)
    by_index = {p["metadata"]["annotations"][INDEX]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        meta, spec = pod["metadata"], pod["spec"]
        assert re.fullmatch(rf"idx-{index}-[a-z0-9]{{5}}", meta["name"]), meta["name"]
        assert meta["labels"][INDEX] == index
        assert spec["hostname"] == f"idx-{index}"
        assert spec["subdomain"] == "workers"
        env_vars = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env_vars["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        )


async def test_backoff_limit_zero_fails_at_first_failure(env: Env) -> None:
    ns = await env.namespace("backoff0")
    await env.client.create(JOBS, batch_job("bad", ns, backoffLimit=0, exit_code=1))
    job = await wait_condition(env, ns, "bad", "Failed")
    assert conditions(job) == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert job["status"]["failed"] == 1
    assert "completionTime" not in job["status"]
    events = await wait_events(env, ns, "BackoffLimitExceeded")
    assert events == [
        ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    ]


async def test_failed_pod_is_recreated_after_ten_seconds_backoff(env: Env) -> None:
    ns = await env.namespace("backoff1")
    await env.client.create(
        JOBS, batch_job("retry", ns, backoffLimit=1, exit_code=1, run_seconds=0.2)
    )
    job = await wait_condition(env, ns, "retry", "Failed", timeout=60)
    assert job["status"]["failed"] == 2
    pods = sorted(await job_pods(env, ns), key=lambda p: p["metadata"]["creationTimestamp"])
    assert len(pods) == 2
    first_finished = stamp(
        pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    )
    second_created = stamp(pods[1]["metadata"]["creationTimestamp"])
    # 10 s after the first failure (whole-second timestamps: allow one second of rounding)
    assert (second_created - first_finished).total_seconds() >= 9, (first_finished, second_created)


async def test_restarts_under_on_failure_count_against_the_backoff_limit(env: Env) -> None:
    ns = await env.namespace("onfailure")
    await env.client.create(
        JOBS,
        batch_job(
            "crash",
            ns,
            backoffLimit=1,
            restart_policy="OnFailure",
            annotations={SIM + "restarts": "3", SIM + "fail-after-seconds": "0.2"},
            run_seconds=30,
        ),
    )
    job = await wait_condition(env, ns, "crash", "Failed")
    assert ("Failed", "True", "BackoffLimitExceeded") in conditions(job)


async def test_suspend_and_resume(env: Env) -> None:
    ns = await env.namespace("suspend")
    await env.client.create(
        JOBS, batch_job("sus", ns, suspend=True, run_seconds=30, parallelism=2, completions=2)
    )
    job = await wait_condition(env, ns, "sus", "Suspended")
    assert conditions(job) == [("Suspended", "True", "JobSuspended")]
    assert "startTime" not in job["status"]
    await asyncio.sleep(1.5)
    assert await job_pods(env, ns) == []
    await env.client.patch(JOBS, ns, "sus", {"spec": {"suspend": False}})

    async def resumed() -> Obj | None:
        job = await get_job(env, ns, "sus")
        status = (job or {}).get("status") or {}
        return job if status.get("active") == 2 and status.get("startTime") else None

    job = await poll(resumed, timeout=30, what="resumed with 2 active pods")
    assert ("Suspended", "False", "JobResumed") in conditions(job)
    first_start = stamp(job["status"]["startTime"])
    await asyncio.sleep(1.1)  # startTime has whole seconds: a new one will differ
    await env.client.patch(JOBS, ns, "sus", {"spec": {"suspend": True}})

    async def suspended_again() -> Obj | None:
        job = await get_job(env, ns, "sus")
        pods = await job_pods(env, ns)
        ok = (
            job is not None
            and ("Suspended", "True", "JobSuspended") in conditions(job)
            and not job["status"].get("active")
            and not pods
        )
        return job if ok else None

    job = await poll(suspended_again, timeout=30, what="suspended again, pods gone")
    assert not job["status"].get("failed")  # pods removed by suspension are not failures
    assert "startTime" not in job["status"]  # cleared while suspended, as kube v1.36 does
    await env.client.patch(JOBS, ns, "sus", {"spec": {"suspend": False}})
    job = await poll(resumed, timeout=30, what="resumed again")
    assert stamp(job["status"]["startTime"]) > first_start  # reset on every resume
    events = {r for _, r, _ in await reasons(env, ns)}
    assert {"Suspended", "Resumed", "SuccessfulCreate", "SuccessfulDelete"} <= events


async def test_pod_failure_policy_fail_job(env: Env) -> None:
    ns = await env.namespace("pfp")
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    await env.client.create(JOBS, batch_job("pf", ns, exit_code=42, podFailurePolicy=policy))
    job = await wait_condition(env, ns, "pf", "Failed")
    assert [c[:3] for c in conditions(job)] == [
        ("FailureTarget", "True", "PodFailurePolicy"),
        ("Failed", "True", "PodFailurePolicy"),
    ]
    pod = (await job_pods(env, ns))[0]
    message = job["status"]["conditions"][1]["message"]
    assert message == (
        f"Container c for pod {ns}/{pod['metadata']['name']} failed with exit code 42 "
        "matching FailJob rule at index 0"
    )
    assert job["spec"]["podReplacementPolicy"] == "Failed"


async def test_success_policy_succeeded_count(env: Env) -> None:
    ns = await env.namespace("successpolicy")
    await env.client.create(
        JOBS,
        batch_job(
            "sp",
            ns,
            completionMode="Indexed",
            completions=3,
            parallelism=1,
            successPolicy={"rules": [{"succeededCount": 1}]},
        ),
    )
    job = await wait_condition(env, ns, "sp", "Complete")
    assert conditions(job) == [
        ("SuccessCriteriaMet", "True", "SuccessPolicy"),
        ("Complete", "True", "SuccessPolicy"),
    ]
    assert job["status"]["conditions"][0]["message"] == "Matched rules at index 0"
    assert job["status"]["completedIndexes"] == "0"
    assert job["status"]["succeeded"] == 1


async def test_backoff_limit_per_index_fails_indexes(env: Env) -> None:
    ns = await env.namespace("perindex")
    await env.client.create(
        JOBS,
        batch_job(
            "pi",
            ns,
            completionMode="Indexed",
            completions=2,
            parallelism=2,
            backoffLimitPerIndex=0,
            exit_code=1,
        ),
    )
    job = await wait_condition(env, ns, "pi", "Failed")
    assert conditions(job) == [
        ("FailureTarget", "True", "FailedIndexes"),
        ("Failed", "True", "FailedIndexes"),
    ]
    assert job["status"]["failedIndexes"] == "0,1"
    assert job["status"]["failed"] == 2
    pods = await job_pods(env, ns)
    assert {
        p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] for p in pods
    } == {"0"}


async def test_active_deadline_exceeded(env: Env) -> None:
    ns = await env.namespace("deadline")
    await env.client.create(JOBS, batch_job("slow", ns, run_seconds=60, activeDeadlineSeconds=2))
    job = await wait_condition(env, ns, "slow", "Failed")
    assert conditions(job) == [
        ("FailureTarget", "True", "DeadlineExceeded"),
        ("Failed", "True", "DeadlineExceeded"),
    ]
    assert job["status"]["failed"] == 1  # the running pod, deleted, counts as failed
    assert not job["status"].get("active")
    events = await wait_events(env, ns, "DeadlineExceeded")
    assert events == [
        ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline")
    ]


async def test_ttl_after_finished_deletes_job_and_pods(env: Env) -> None:
    ns = await env.namespace("ttl")
    await env.client.create(JOBS, batch_job("short", ns, ttlSecondsAfterFinished=1))
    await wait_condition(env, ns, "short", "Complete")

    async def gone() -> bool:
        return await get_job(env, ns, "short") is None and not await job_pods(env, ns)

    await poll(gone, timeout=30, what="Job and pods deleted after the TTL")


async def test_managed_by_another_controller_is_left_alone(env: Env) -> None:
    ns = await env.namespace("managedby")
    await env.client.create(JOBS, batch_job("ext", ns, managedBy="example.com/other"))
    await asyncio.sleep(2.5)
    job = await get_job(env, ns, "ext")
    assert job is not None and not (job.get("status") or {}).get("conditions")
    assert not (job.get("status") or {}).get("startTime")
    assert await env.client.list_all(PODS, ns) == []
