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
from datetime import UTC, datetime
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
COMPLETED = "Reached expected number of succeeded pods"


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


def plain_status(job: Obj) -> Obj:
    """The status without its timestamps (conditions: type, status, reason, message)."""
    status = {k: v for k, v in job["status"].items() if k not in ("startTime", "completionTime")}
    status["conditions"] = [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in status.get("conditions") or []
    ]
    return status


async def running_pods(env: Env, ns: str, count: int) -> list[Obj]:
    """Poll until ``count`` pods run (phase Running, not being deleted); sorted by index."""

    async def check() -> list[Obj] | None:
        pods = [
            p
            for p in await job_pods(env, ns)
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        return pods if len(pods) == count else None

    pods: list[Obj] = await poll(check, timeout=30, interval=0.1, what=f"{count} running pods")
    return sorted(pods, key=lambda p: int(p["metadata"].get("annotations", {}).get(INDEX, "0")))


async def delete_pod(env: Env, pod: Obj) -> None:
    """A user's graceful deletion: the simulated kubelet stops the containers (exit code 143)."""
    await env.client.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])


async def test_pod_failure_policy_ignore_replaces_without_counting(env: Env) -> None:
    ns = await env.namespace("pfpignore")
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [143]}}]}
    await env.client.create(
        JOBS, batch_job("ig", ns, run_seconds=3, backoffLimit=0, podFailurePolicy=policy)
    )
    (first,) = await running_pods(env, ns, 1)
    deleted_at = datetime.now(UTC)
    await delete_pod(env, first)  # exits 143: ignored, so backoffLimit 0 is not reached
    job = await wait_condition(env, ns, "ig", "Complete", timeout=60)
    assert plain_status(job) == {
        "conditions": [
            {"type": t, "status": "True", "reason": "CompletionsReached", "message": COMPLETED}
            for t in ("SuccessCriteriaMet", "Complete")
        ],
        "succeeded": 1,  # no "failed": the ignored pod is not counted
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    pods = await job_pods(env, ns)  # the ignored pod lost its finalizer and is gone
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["metadata"]["uid"] != first["metadata"]["uid"]
    # not counted, yet replaced only after the pod backoff (10 s; whole-second timestamps)
    gap = (stamp(pods[0]["metadata"]["creationTimestamp"]) - deleted_at).total_seconds()
    assert gap >= 8, gap
    created = await wait_events(env, ns, "SuccessfulCreate", 2)
    assert {m for _, _, m in created} == {
        f"Created pod: {p['metadata']['name']}" for p in (first, pods[0])
    }


async def test_pod_failure_policy_count_counts_like_no_rule(env: Env) -> None:
    ns = await env.namespace("pfpcount")
    policy = {
        "rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}},
            {"action": "Count", "onExitCodes": {"operator": "In", "values": [3]}},
        ]
    }
    await env.client.create(
        JOBS, batch_job("counted", ns, exit_code=3, backoffLimit=0, podFailurePolicy=policy)
    )
    await env.client.create(JOBS, batch_job("plain", ns, exit_code=3, backoffLimit=0))
    for name in ("counted", "plain"):  # a Count rule counts the failure as no rule does
        job = await wait_condition(env, ns, name, "Failed")
        assert plain_status(job) == {
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
                for t in ("FailureTarget", "Failed")
            ],
            "failed": 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }, name


async def test_pod_failure_policy_on_pod_conditions_disruption_target(env: Env) -> None:
    ns = await env.namespace("pfpcond")
    policy = {
        "rules": [
            {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [143]}},
        ]
    }
    await env.client.create(
        JOBS, batch_job("dis", ns, run_seconds=30, backoffLimit=6, podFailurePolicy=policy)
    )
    (pod,) = await running_pods(env, ns, 1)
    name = pod["metadata"]["name"]

    def disrupt(obj: Obj) -> Obj:  # what an eviction or preemption writes before deleting
        obj["status"].setdefault("conditions", []).append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
                "lastTransitionTime": pod["metadata"]["creationTimestamp"],
            }
        )
        return obj

    await env.client.update_status_with_retry(PODS, ns, name, disrupt)
    await delete_pod(env, pod)  # exits 143, but the first rule (the condition) decides
    job = await wait_condition(env, ns, "dis", "Failed")
    message = f"Pod {ns}/{name} has condition DisruptionTarget matching FailJob rule at index 0"
    assert plain_status(job) == {
        "conditions": [
            {"type": t, "status": "True", "reason": "PodFailurePolicy", "message": message}
            for t in ("FailureTarget", "Failed")
        ],
        "failed": 1,
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    events = await wait_events(env, ns, "PodFailurePolicy")
    assert events == [("Warning", "PodFailurePolicy", message)]


async def test_pod_failure_policy_fail_index_with_backoff_limit_per_index(env: Env) -> None:
    ns = await env.namespace("failindex")
    policy = {
        "rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [143]}}]
    }
    await env.client.create(
        JOBS,
        batch_job(
            "fi",
            ns,
            completionMode="Indexed",
            completions=3,
            parallelism=3,
            backoffLimitPerIndex=1,
            podFailurePolicy=policy,
            run_seconds=6,
        ),
    )
    pods = await running_pods(env, ns, 3)
    await delete_pod(env, pods[1])  # index 1 fails at once, its one retry left unused

    async def index_failed() -> Obj | None:
        job = await get_job(env, ns, "fi")
        status = (job or {}).get("status") or {}
        return job if status.get("failedIndexes") == "1" and status.get("failed") else None

    job = await poll(index_failed, timeout=30, what="failedIndexes 1, counted")
    assert plain_status(job) == {  # marked failed while the other indexes still run
        "conditions": [],
        "active": 2,
        "ready": 2,
        "failed": 1,
        "failedIndexes": "1",
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    job = await wait_condition(env, ns, "fi", "Failed", timeout=60)
    assert plain_status(job) == {
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": "FailedIndexes",
                "message": "Job has failed indexes",
            }
            for t in ("FailureTarget", "Failed")
        ],
        "succeeded": 2,
        "completedIndexes": "0,2",
        "failed": 1,
        "failedIndexes": "1",
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    indexes = sorted(p["metadata"]["annotations"][INDEX] for p in await job_pods(env, ns))
    assert indexes == ["0", "2"]  # index 1 was never recreated (its failed pod is gone)
    events = await wait_events(env, ns, "FailedIndexes")
    assert events == [("Warning", "FailedIndexes", "Job has failed indexes")]


async def test_ignored_failure_of_an_index_is_counted_apart(env: Env) -> None:
    ns = await env.namespace("ignoreindex")
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [143]}}]}
    await env.client.create(
        JOBS,
        batch_job(
            "ii",
            ns,
            completionMode="Indexed",
            completions=2,
            parallelism=2,
            backoffLimitPerIndex=0,
            podFailurePolicy=policy,
            run_seconds=3,
        ),
    )
    first = await running_pods(env, ns, 2)
    await delete_pod(env, first[0])  # ignored: index 0 runs again despite backoffLimitPerIndex 0
    job = await wait_condition(env, ns, "ii", "Complete", timeout=60)
    assert plain_status(job) == {
        "conditions": [
            {"type": t, "status": "True", "reason": "CompletionsReached", "message": COMPLETED}
            for t in ("SuccessCriteriaMet", "Complete")
        ],
        "succeeded": 2,
        "completedIndexes": "0,1",
        "failedIndexes": "",
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    counts = {
        p["metadata"]["annotations"][INDEX]: {
            k.removeprefix("batch.kubernetes.io/"): v
            for k, v in p["metadata"]["annotations"].items()
            if "failure-count" in k
        }
        for p in await job_pods(env, ns)
    }
    assert counts == {
        "0": {"job-index-failure-count": "0", "job-index-ignored-failure-count": "1"},
        "1": {"job-index-failure-count": "0"},
    }


async def test_max_failed_indexes_exceeded(env: Env) -> None:
    ns = await env.namespace("maxfailed")
    await env.client.create(
        JOBS,
        batch_job(
            "mf",
            ns,
            completionMode="Indexed",
            completions=4,
            parallelism=1,
            backoffLimitPerIndex=0,
            maxFailedIndexes=1,
            exit_code=1,
        ),
    )
    job = await wait_condition(env, ns, "mf", "Failed", timeout=60)
    message = "Job has exceeded the specified maximal number of failed indexes"
    assert plain_status(job) == {
        "conditions": [
            {"type": t, "status": "True", "reason": "MaxFailedIndexesExceeded", "message": message}
            for t in ("FailureTarget", "Failed")
        ],
        "failed": 2,
        "failedIndexes": "0,1",  # the second failed index is one too many: 2 and 3 never run
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    indexes = sorted(p["metadata"]["annotations"][INDEX] for p in await job_pods(env, ns))
    assert indexes == ["0", "1"]
    events = await wait_events(env, ns, "MaxFailedIndexesExceeded")
    assert events == [("Warning", "MaxFailedIndexesExceeded", message)]


async def test_max_failed_indexes_exceeded_removes_the_running_indexes(env: Env) -> None:
    ns = await env.namespace("maxfailed0")
    await env.client.create(
        JOBS,
        batch_job(
            "mz",
            ns,
            completionMode="Indexed",
            completions=3,
            parallelism=3,
            backoffLimitPerIndex=0,
            maxFailedIndexes=0,
            run_seconds=20,
        ),
    )
    pods = await running_pods(env, ns, 3)
    await delete_pod(env, pods[1])  # index 1 fails (exit 143): one failed index is too many
    job = await wait_condition(env, ns, "mz", "Failed", timeout=60)
    message = "Job has exceeded the specified maximal number of failed indexes"
    assert plain_status(job) == {
        "conditions": [
            {"type": t, "status": "True", "reason": "MaxFailedIndexesExceeded", "message": message}
            for t in ("FailureTarget", "Failed")
        ],
        "failed": 3,  # indexes 0 and 2, deleted by the controller, count as failed pods ...
        "failedIndexes": "1",  # ... but not as failed indexes
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    await poll(lambda: _no_pods(env, ns), timeout=30, what="all pods gone")
    assert sorted(await reasons(env, ns)) == sorted(
        [("Normal", "SuccessfulCreate", f"Created pod: {p['metadata']['name']}") for p in pods]
        + [
            ("Normal", "SuccessfulDelete", f"Deleted pod: {pods[i]['metadata']['name']}")
            for i in (0, 2)
        ]
        + [("Warning", "MaxFailedIndexesExceeded", message)]
    )


async def _no_pods(env: Env, ns: str) -> bool:
    return not await job_pods(env, ns)


async def test_pod_replacement_policy_terminating_or_failed_replaces_terminating_pods(
    env: Env,
) -> None:
    ns = await env.namespace("replaceterm")
    # the default policy (no podFailurePolicy): a deleted pod is a failure at once; bound to a
    # node no kubelet serves, it keeps terminating while its replacement runs
    await env.client.create(
        JOBS, batch_job("rt", ns, backoffLimit=2, pod_spec={"nodeName": "no-such-node"})
    )
    await poll(lambda: job_pods(env, ns), timeout=30, what="a pod")
    (pod,) = await job_pods(env, ns)
    await delete_pod(env, pod)

    async def replaced() -> Obj | None:
        job = await get_job(env, ns, "rt")
        active = ((job or {}).get("status") or {}).get("active")
        return job if active == 1 and len(await job_pods(env, ns)) == 2 else None

    job = await poll(replaced, timeout=40, what="a replacement")
    assert plain_status(job) == {
        "conditions": [],
        "active": 1,
        "failed": 1,  # counted while still terminating
        "ready": 0,
        "terminating": 1,
        "uncountedTerminatedPods": {},
    }
    old, new = sorted(
        await job_pods(env, ns), key=lambda p: p["metadata"]["uid"] != pod["metadata"]["uid"]
    )
    assert old["metadata"]["uid"] == pod["metadata"]["uid"]
    assert old["status"]["phase"] == "Pending" and old["metadata"]["deletionTimestamp"]
    assert not old["metadata"].get("finalizers")
    assert new["metadata"]["finalizers"] == [FINALIZER]


async def test_pod_replacement_policy_failed_waits_for_terminal_pods(env: Env) -> None:
    ns = await env.namespace("replacement")
    # bound to a node no kubelet serves: the pod stays Pending, and Terminating once deleted,
    # until the test writes its terminal phase as a kubelet would at the end of the grace period
    await env.client.create(
        JOBS,
        batch_job(
            "rp",
            ns,
            podReplacementPolicy="Failed",
            backoffLimit=2,
            pod_spec={"nodeName": "no-such-node"},
        ),
    )

    async def status_is(**want: Any) -> Obj | None:
        job = await get_job(env, ns, "rp")
        status = (job or {}).get("status") or {}
        return job if all(status.get(k) == v for k, v in want.items()) else None

    await poll(lambda: status_is(active=1), timeout=30, what="1 active pod")
    (pod,) = await job_pods(env, ns)
    await delete_pod(env, pod)
    job = await poll(
        lambda: status_is(active=None, terminating=1), timeout=30, what="1 terminating pod"
    )
    terminating = {
        "conditions": [],
        "ready": 0,
        "terminating": 1,  # neither active nor (yet) failed
        "uncountedTerminatedPods": {},
    }
    assert plain_status(job) == terminating
    await asyncio.sleep(2)
    assert len(await job_pods(env, ns)) == 1  # not replaced while terminating
    job = await get_job(env, ns, "rp")
    assert job is not None and plain_status(job) == terminating

    def failed(obj: Obj) -> Obj:
        obj["status"]["phase"] = "Failed"
        return obj

    await env.client.update_status_with_retry(PODS, ns, pod["metadata"]["name"], failed)
    job = await poll(lambda: status_is(active=1, failed=1), timeout=40, what="a replacement")
    assert plain_status(job) == {
        "conditions": [],
        "active": 1,
        "failed": 1,  # the failed pod is counted
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    old, new = sorted(
        await job_pods(env, ns), key=lambda p: p["metadata"]["uid"] != pod["metadata"]["uid"]
    )
    assert old["metadata"]["uid"] == pod["metadata"]["uid"]
    assert old["status"]["phase"] == "Failed" and not old["metadata"].get("finalizers")
    assert old["metadata"]["deletionTimestamp"]  # still in its grace period
    assert new["status"]["phase"] == "Pending" and new["metadata"]["finalizers"] == [FINALIZER]
    created = await wait_events(env, ns, "SuccessfulCreate", 2)
    assert {m for _, _, m in created} == {
        f"Created pod: {p['metadata']['name']}" for p in (old, new)
    }


async def test_elastic_indexed_job_scales_completions_with_parallelism(env: Env) -> None:
    ns = await env.namespace("elastic")
    await env.client.create(
        JOBS,
        batch_job("el", ns, completionMode="Indexed", completions=2, parallelism=2, run_seconds=10),
    )
    await running_pods(env, ns, 2)
    with pytest.raises(ApiStatusError) as info:
        await env.client.patch(JOBS, ns, "el", {"spec": {"completions": 3}})
    assert info.value.code == 422
    assert info.value.message == (
        'Job.batch "el" is invalid: spec.completions: Invalid value: 3: '
        "can only be modified in tandem with spec.parallelism"
    )
    await env.client.patch(JOBS, ns, "el", {"spec": {"completions": 4, "parallelism": 4}})
    pods = await running_pods(env, ns, 4)  # indexes 2 and 3 added
    assert [p["metadata"]["annotations"][INDEX] for p in pods] == ["0", "1", "2", "3"]
    await env.client.patch(JOBS, ns, "el", {"spec": {"completions": 1, "parallelism": 1}})

    async def scaled_down() -> Obj | None:
        job = await get_job(env, ns, "el")
        left = await job_pods(env, ns)
        ok = (job or {}).get("status", {}).get("active") == 1 and len(left) == 1
        return job if ok else None

    await poll(scaled_down, timeout=30, what="scaled down to index 0, the others gone")
    (left,) = await job_pods(env, ns)
    assert left["metadata"]["uid"] == pods[0]["metadata"]["uid"]
    deleted = await wait_events(env, ns, "SuccessfulDelete", 3)
    assert {m for _, _, m in deleted} == {f"Deleted pod: {p['metadata']['name']}" for p in pods[1:]}
    job = await wait_condition(env, ns, "el", "Complete", timeout=60)
    assert plain_status(job) == {
        "conditions": [
            {"type": t, "status": "True", "reason": "CompletionsReached", "message": COMPLETED}
            for t in ("SuccessCriteriaMet", "Complete")
        ],
        "succeeded": 1,
        "completedIndexes": "0",  # no "failed": pods removed by scaling down are not failures
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
