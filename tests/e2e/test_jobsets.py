"""JobSets run end to end on a cluster with simulated nodes: what a client sees through the API
of a JobSet, its child Jobs, their pods and the headless Service (the embedded cluster's
``kubetrain.cluster.jobset`` over the kcm Job controller; under ``--apiserver=real`` the real
JobSet v0.12 controller over kube-controller-manager's Job controller).

Each test has its own namespace; the simulator's annotations (``sim.kubetrain.dev/``) make the
pods succeed, fail with an exit code, or run long.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from conformance.jobset import find_jobset, jobset_root, running_jobset
from jobkit_e2e import SIM, Env, open_env, poll

from kubetrain.informers.resource import PODS, SERVICES, ResourceRef
from kubetrain.informers.transport import ApiStatusError

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
JOBS = ResourceRef("batch", "v1", "jobs", True, "Job")
JOBSETS = ResourceRef("jobset.x-k8s.io", "v1alpha2", "jobsets", True, "JobSet")
P = "jobset.sigs.k8s.io/"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    """The embedded cluster's JobSet, or under ``--apiserver=real`` the real JobSet controller
    (``conformance/jobset.py``) next to the real plane, whose controller manager runs the child
    Jobs."""
    apiserver = selected_apiserver(request.config)
    if apiserver == "real" and find_jobset() is None:
        pytest.fail(
            f"JobSet is not built in {jobset_root()}: run tools/conformance/build_jobset.sh"
        )
    async for e in open_env(nodes=4, apiserver=apiserver, kube_controllers=True):
        if apiserver != "real":
            yield e
            continue
        work = Path(tmp_path_factory.mktemp("jobset"))
        async with running_jobset(e.client, e.cluster.kubeconfig_path, work):
            yield e


def rjob(
    name: str,
    *,
    replicas: int = 1,
    completions: int = 1,
    run_seconds: float = 0.3,
    exit_code: int | None = None,
    backoff_limit: int = 0,
    **extra: Any,
) -> Obj:
    annotations = {SIM + "run-seconds": str(run_seconds)}
    if exit_code is not None:
        annotations[SIM + "exit-code"] = str(exit_code)
    return {
        "name": name,
        "replicas": replicas,
        "template": {
            "spec": {
                "completions": completions,
                "parallelism": completions,
                "backoffLimit": backoff_limit,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox:1.36"}],
                    },
                },
            }
        },
        **extra,
    }


def jobset(name: str, ns: str, *rjobs: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicatedJobs": list(rjobs), **spec},
    }


async def get_js(env: Env, ns: str, name: str) -> Obj | None:
    try:
        return await env.client.get(JOBSETS, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


def cond(js: Obj, ctype: str) -> Obj | None:
    return next(
        (c for c in (js.get("status") or {}).get("conditions") or () if c["type"] == ctype), None
    )


async def wait_js(env: Env, ns: str, name: str, ctype: str, timeout: float = 40) -> Obj:
    async def check() -> Obj | None:
        js = await get_js(env, ns, name)
        c = cond(js, ctype) if js else None
        return js if c is not None and c["status"] == "True" else None

    result: Obj = await poll(check, timeout=timeout, interval=0.1, what=f"{name} {ctype}")
    return result


async def jobs(env: Env, ns: str) -> list[Obj]:
    return sorted(await env.client.list_all(JOBS, ns), key=lambda j: j["metadata"]["name"])


async def test_defaults_and_validation(env: Env) -> None:
    ns = await env.namespace("jsadmit")
    created = await env.client.create(JOBSETS, jobset("d", ns, rjob("w"), suspend=True))
    spec = created["spec"]
    assert spec["successPolicy"] == {"operator": "All"}
    assert spec["startupPolicy"] == {"startupPolicyOrder": "AnyOrder"}
    assert spec["network"] == {"enableDNSHostnames": True, "publishNotReadyAddresses": True}
    job_spec = spec["replicatedJobs"][0]["template"]["spec"]
    assert job_spec["completionMode"] == "Indexed"
    assert spec["replicatedJobs"][0]["groupName"] == "default"
    bad = jobset(
        "v", ns, rjob("w"), successPolicy={"operator": "All", "targetReplicatedJobs": ["x"]}
    )
    with pytest.raises(ApiStatusError) as info:
        await env.client.create(JOBSETS, bad)
    assert info.value.code == 422
    assert "invalid replicatedJob name 'x' does not appear in .spec.ReplicatedJobs" in str(
        info.value.message
    )
    assert 'admission webhook "vjobset.kb.io" denied the request' in str(info.value.message)
    long_name = jobset("a" * 60, ns, rjob("w"))
    with pytest.raises(ApiStatusError) as info:
        await env.client.create(JOBSETS, long_name)
    assert "job names generated for this JobSet will exceed 63 characters" in str(
        info.value.message
    )
    for _ in range(5):  # the controller may write the status meanwhile: 409, read again
        current = await get_js(env, ns, "d")
        assert current is not None
        current["spec"]["successPolicy"] = {"operator": "Any"}
        with pytest.raises(ApiStatusError) as info:
            await env.client.update(JOBSETS, current)
        if info.value.code != 409:
            break
    assert "spec.successPolicy: Invalid value: Value is immutable" in str(info.value.message)


async def test_children_labels_service_and_completion(env: Env) -> None:
    ns = await env.namespace("jsrun")
    created = await env.client.create(
        JOBSETS,
        jobset(
            "train",
            ns,
            rjob("leader", replicas=1),
            rjob("workers", replicas=2, completions=2),
            coordinator={"replicatedJob": "leader", "jobIndex": 0, "podIndex": 0},
        ),
    )
    uid = created["metadata"]["uid"]
    js = await wait_js(env, ns, "train", "Completed")
    assert js["status"]["terminalState"] == "Completed"
    c = cond(js, "Completed")
    assert c is not None
    assert (c["reason"], c["message"]) == ("AllJobsCompleted", "jobset completed successfully")
    by_name = {s["name"]: s for s in js["status"]["replicatedJobsStatus"]}
    assert by_name["workers"]["succeeded"] == 2 and by_name["leader"]["succeeded"] == 1
    children = await jobs(env, ns)
    assert [j["metadata"]["name"] for j in children] == [
        "train-leader-0",
        "train-workers-0",
        "train-workers-1",
    ]
    w1 = children[2]
    labels = w1["metadata"]["labels"]
    assert labels[P + "jobset-name"] == "train"
    assert labels[P + "jobset-uid"] == uid
    assert labels[P + "replicatedjob-name"] == "workers"
    assert labels[P + "replicatedjob-replicas"] == "2"
    assert labels[P + "job-index"] == "1"
    assert labels[P + "job-global-index"] == "2"
    assert labels[P + "global-replicas"] == "3"
    assert labels[P + "restart-attempt"] == "0"
    assert labels[P + "coordinator"] == "train-leader-0-0.train"
    assert len(labels[P + "job-key"]) == 40
    assert w1["metadata"]["annotations"][P + "job-index"] == "1"
    assert w1["spec"]["template"]["metadata"]["labels"][P + "job-index"] == "1"
    assert w1["spec"]["template"]["spec"]["subdomain"] == "train"
    owner = w1["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("JobSet", uid, True)
    svc = await env.client.get(SERVICES, ns, "train")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {P + "jobset-name": "train"}
    pods = await env.client.list_all(PODS, ns)
    hostnames = sorted(p["spec"].get("hostname") for p in pods)
    assert "train-workers-1-1" in hostnames and "train-leader-0-0" in hostnames
    assert all(p["spec"].get("subdomain") == "train" for p in pods)


async def test_success_policy_any(env: Env) -> None:
    ns = await env.namespace("jsany")
    await env.client.create(
        JOBSETS,
        jobset(
            "any",
            ns,
            rjob("server", run_seconds=60),
            rjob("client", run_seconds=0.2),
            successPolicy={"operator": "Any", "targetReplicatedJobs": ["client"]},
        ),
    )
    js = await wait_js(env, ns, "any", "Completed")
    assert js["status"]["terminalState"] == "Completed"

    async def server_gone() -> bool:
        names = [j["metadata"]["name"] for j in await jobs(env, ns)]
        return "any-server-0" not in names

    await poll(server_gone, timeout=20, what="the active server Job deleted")


async def test_failure_without_policy_fails(env: Env) -> None:
    ns = await env.namespace("jsfail")
    await env.client.create(JOBSETS, jobset("f", ns, rjob("w", exit_code=1)))
    js = await wait_js(env, ns, "f", "Failed")
    c = cond(js, "Failed")
    assert c is not None
    assert c["reason"] == "FailedJobs"
    assert c["message"] == "jobset failed due to one or more job failures (first failed job: f-w-0)"
    assert js["status"]["terminalState"] == "Failed"


async def test_failure_policy_restarts_then_max(env: Env) -> None:
    ns = await env.namespace("jsrestart")
    await env.client.create(
        JOBSETS, jobset("r", ns, rjob("w", exit_code=1), failurePolicy={"maxRestarts": 2})
    )
    js = await wait_js(env, ns, "r", "Failed", timeout=60)
    c = cond(js, "Failed")
    assert c is not None and c["reason"] == "ReachedMaxRestarts"
    assert js["status"]["restarts"] == 2
    assert js["status"]["restartsCountTowardsMax"] == 2
    (job,) = await jobs(env, ns)
    assert job["metadata"]["labels"][P + "restart-attempt"] == "2"
    restarting = cond(js, "RestartingJobSet")
    assert restarting is not None and restarting["status"] == "False"


async def test_failure_policy_rule_fail_jobset(env: Env) -> None:
    ns = await env.namespace("jsrule")
    policy = {
        "maxRestarts": 5,
        "rules": [{"action": "FailJobSet", "onJobFailureReasons": ["BackoffLimitExceeded"]}],
    }
    await env.client.create(JOBSETS, jobset("x", ns, rjob("w", exit_code=2), failurePolicy=policy))
    js = await wait_js(env, ns, "x", "Failed")
    c = cond(js, "Failed")
    assert c is not None and c["reason"] == "FailJobSetFailurePolicyAction"
    assert js["status"].get("restarts", 0) == 0


async def test_startup_in_order(env: Env) -> None:
    ns = await env.namespace("jsorder")
    await env.client.create(
        JOBSETS,
        jobset(
            "o",
            ns,
            rjob("first", run_seconds=3),
            rjob("second", run_seconds=0.3),
            startupPolicy={"startupPolicyOrder": "InOrder"},
        ),
    )
    js = await wait_js(env, ns, "o", "StartupPolicyCompleted")
    c = cond(js, "StartupPolicyCompleted")
    assert c is not None and c["reason"] == "InOrderStartupPolicyCompleted"
    children = {j["metadata"]["name"]: j for j in await jobs(env, ns)}
    first, second = children["o-first-0"], children["o-second-0"]
    assert first["metadata"]["creationTimestamp"] <= second["metadata"]["creationTimestamp"]
    in_progress = cond(js, "StartupPolicyInProgress")
    assert in_progress is not None and in_progress["status"] == "False"
    await wait_js(env, ns, "o", "Completed")


async def test_depends_on_complete(env: Env) -> None:
    ns = await env.namespace("jsdeps")
    await env.client.create(
        JOBSETS,
        jobset(
            "d",
            ns,
            rjob("init", run_seconds=1.0),
            rjob("main", dependsOn=[{"name": "init", "status": "Complete"}]),
        ),
    )

    async def init_only() -> bool:
        names = [j["metadata"]["name"] for j in await jobs(env, ns)]
        return names == ["d-init-0"]

    await poll(init_only, timeout=10, what="only the init Job")
    await wait_js(env, ns, "d", "Completed")
    children = {j["metadata"]["name"]: j for j in await jobs(env, ns)}
    init_done = next(
        c["lastTransitionTime"]
        for c in children["d-init-0"]["status"]["conditions"]
        if c["type"] == "Complete"
    )
    assert children["d-main-0"]["metadata"]["creationTimestamp"] >= init_done


async def test_suspend_and_resume(env: Env) -> None:
    ns = await env.namespace("jssusp")
    await env.client.create(JOBSETS, jobset("s", ns, rjob("w", replicas=2), suspend=True))
    js = await wait_js(env, ns, "s", "Suspended")
    c = cond(js, "Suspended")
    assert c is not None and c["reason"] == "SuspendedJobs"

    async def both_suspended() -> list[Obj] | None:
        found = await jobs(env, ns)
        return found if len(found) == 2 and all(j["spec"]["suspend"] for j in found) else None

    await poll(both_suspended, timeout=10, what="two suspended Jobs")
    assert not await env.client.list_all(PODS, ns)
    js = await get_js(env, ns, "s")
    assert js is not None
    template = js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    template["metadata"].setdefault("labels", {})["queue"] = "blue"
    js["spec"]["suspend"] = False
    await env.client.update(JOBSETS, js)
    js = await wait_js(env, ns, "s", "Completed")
    c = cond(js, "Suspended")
    assert c is not None and (c["status"], c["reason"]) == ("False", "ResumeJobs")
    for job in await jobs(env, ns):
        assert job["spec"]["suspend"] is False
        assert job["spec"]["template"]["metadata"]["labels"]["queue"] == "blue"


async def test_ttl_after_finished(env: Env) -> None:
    """Completed, then deleted after its TTL. Both are read from one watch opened before the
    create: polling for the Completed condition could miss it on a loaded machine, since the TTL
    of one second may delete the JobSet between two polls."""
    ns = await env.namespace("jsttl")
    seen: list[tuple[str, bool]] = []  # (watch event type, Completed=True) in arrival order

    async def follow() -> None:
        query = {"watch": "true", "fieldSelector": "metadata.name=t", "timeoutSeconds": "120"}
        async with env.client.stream_lines(JOBSETS.collection_path(ns), query=query) as lines:
            async for line in lines:
                event = orjson.loads(line)
                js = event["object"]
                c = cond(js, "Completed")
                seen.append((event["type"], c is not None and c["status"] == "True"))
                if event["type"] == "DELETED":
                    return

    watcher = asyncio.create_task(follow())
    try:
        await env.client.create(JOBSETS, jobset("t", ns, rjob("w"), ttlSecondsAfterFinished=1))
        # JobSet deletes with propagation Foreground, which kube's garbage collector finishes; on
        # a plane whose JobSet CRD is seconds old the collector learns the resource at its next
        # discovery sync (every 30 s), so this can take that long on the real tier.
        await asyncio.wait_for(asyncio.shield(watcher), timeout=100)
    finally:
        watcher.cancel()
    completed_at = next((i for i, (_, done) in enumerate(seen) if done), None)
    assert completed_at is not None, f"never Completed before deletion: {seen}"
    assert seen[-1][0] == "DELETED" and completed_at < len(seen) - 1, seen
