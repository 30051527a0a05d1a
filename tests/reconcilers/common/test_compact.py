"""Finished jobs and pods cached compacted: the finished branch decides the same on them as on the
full objects, invalid finished jobs still get their TTL, and the bytes held per finished job."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import orjson
import pytest
from jobkit import T0, adapter_of, make_job, make_pod

from kubetrain.informers.memory import deep_sizeof
from kubetrain.reconcilers.common.compact import compact_job, merge_patch_of, slim_pod
from kubetrain.reconcilers.common.jobs import format_time
from kubetrain.reconcilers.common.pods import failure_verdict
from kubetrain.reconcilers.common.runpolicy import counted_restarts
from kubetrain.reconcilers.common.status import compute_status

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _wire(obj: Obj) -> Obj:
    """As the informer gets it: parsed off the wire (orjson's shared keys, fresh values)."""
    return orjson.loads(orjson.dumps(obj))


def _condition(ctype: str, reason: str, message: str, at: str) -> Obj:
    return {
        "type": ctype,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    }


def finished_job(
    kind: str = "PyTorchJob",
    replicas: dict[str, int | None] | None = None,
    *,
    name: str = "train",
    uid: str = "77377a51-b7a9-475f-9743-8cd30e68dc81",
    outcome: str = "Succeeded",
    finished_ago: float = 60.0,
    run_policy: Obj | None = None,
    statuses: Obj | None = None,
    restart_policy: str = "OnFailure",
    **spec: Any,
) -> Obj:
    """A job as the API server returns it once finished: managedFields, last-applied, labels,
    every condition with messages, replica statuses with selectors."""
    job = make_job(
        kind,
        replicas or {"Master": 1, "Worker": 3},
        name=name,
        uid=uid,
        restart_policy=restart_policy,
        run_policy=run_policy,
        **spec,
    )
    at = format_time(T0 - timedelta(seconds=finished_ago))
    meta = job["metadata"]
    meta.update(
        resourceVersion="52",
        generation=1,
        creationTimestamp=format_time(T0 - timedelta(seconds=finished_ago + 30)),
        labels={"team": "vision"},
        annotations={LAST_APPLIED: orjson.dumps(job["spec"]).decode(), "owner": "alice"},
        managedFields=[{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}],
    )
    selector = "training.kubeflow.org/job-name=" + name
    job["status"] = {
        "conditions": [
            _condition("Created", f"{kind}Created", f"{kind} {name} is created.", at),
            {**_condition("Running", f"{kind}Running", f"{kind} {name} is running.", at)}
            | {"status": "False"},
            _condition(outcome, f"{kind}{outcome}", f"{kind} ns/{name} is {outcome}.", at),
        ],
        "startTime": at,
        "completionTime": at,
        "replicaStatuses": statuses
        if statuses is not None
        else {
            rtype: {"succeeded": n, "selector": f"{selector},replica-type={rtype.lower()}"}
            for rtype, n in (replicas or {"Master": 1, "Worker": 3}).items()
        },
    }
    return job


def kubelet_pod(job: Obj, rtype: str, index: int, phase: str, *, exit_code: int = 0) -> Obj:
    """A pod with everything a kubelet reports (conditions, IPs, container and init container
    statuses with times and IDs), as the node simulator writes it."""
    pod = make_pod(job, rtype, index, phase)
    pod["metadata"].update(
        uid=f"b42425f1-6010-4d4d-906d-{index:04d}{rtype.lower():>8}",
        resourceVersion=str(100 + index),
        creationTimestamp="2025-01-01T11:58:00Z",
        generation=1,
        managedFields=[{"manager": "kubetrain", "operation": "Update"}],
    )
    pod["spec"].update(nodeName="kubetrain-node-1", schedulerName="default-scheduler")
    at = "2025-01-01T11:58:30Z"
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": at,
        "finishedAt": at,
        "containerID": "containerd://" + "3ae85beaee937b0279a91ae94f7ac4f2" * 2,
    }
    container_status = {
        "name": adapter_of(job).kind.default_container,
        "state": {"terminated": terminated} if phase in ("Succeeded", "Failed") else {},
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": "busybox:1",
        "imageID": "busybox:1@sha256:" + "765f875080a9220ec3186dfc31b67b03" * 2,
        "started": False,
        "containerID": terminated["containerID"],
    }
    init_status = {
        **container_status,
        "name": "init-pytorch",
        "state": {"terminated": {**terminated, "exitCode": 0}},
    }
    pod["status"] = {
        "phase": phase,
        "qosClass": "Burstable",
        "conditions": [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": at}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "hostIP": "172.18.0.2",
        "hostIPs": [{"ip": "172.18.0.2"}],
        "podIP": f"10.244.1.{index + 1}",
        "podIPs": [{"ip": f"10.244.1.{index + 1}"}],
        "startTime": at,
        "containerStatuses": [container_status],
        "initContainerStatuses": [init_status],
    }
    return pod


def job_pods(job: Obj, phase: str = "Succeeded") -> list[Obj]:
    return [kubelet_pod(job, "Master", 0, phase)] + [
        kubelet_pod(job, "Worker", i, phase) for i in range(3)
    ]


def test_compact_job_keeps_what_the_finished_branch_reads_and_is_idempotent() -> None:
    job = finished_job(run_policy={"ttlSecondsAfterFinished": 600, "cleanPodPolicy": "All"})
    job["metadata"]["ownerReferences"] = [{"kind": "Workflow", "name": "w", "uid": "w-1"}]
    out = compact_job(_wire(job))
    assert set(out) == {"apiVersion", "kind", "metadata", "spec", "status"}
    meta = out["metadata"]
    assert meta["uid"] == job["metadata"]["uid"]
    assert meta["labels"] == {"team": "vision"}
    assert meta["annotations"] == {"owner": "alice"}  # last-applied dropped
    assert meta["ownerReferences"] == job["metadata"]["ownerReferences"]
    assert "managedFields" not in meta
    assert out["spec"] == {"runPolicy": {"ttlSecondsAfterFinished": 600, "cleanPodPolicy": "All"}}
    assert [c["type"] for c in out["status"]["conditions"]] == ["Succeeded"]
    assert out["status"]["replicaStatuses"] == {
        "Master": {"succeeded": 1},
        "Worker": {"succeeded": 3},
    }
    assert out["status"]["completionTime"] == job["status"]["completionTime"]
    assert compact_job(copy.deepcopy(out)) == out


def test_compact_job_leaves_a_running_job_whole() -> None:
    job = finished_job()
    job["status"]["conditions"] = job["status"]["conditions"][:2]
    out = compact_job(_wire(job))
    assert out["spec"]["pytorchReplicaSpecs"] == job["spec"]["pytorchReplicaSpecs"]
    assert out["status"] == job["status"]
    assert "managedFields" not in out["metadata"]
    assert LAST_APPLIED not in out["metadata"]["annotations"]


def _same_decision(full_job: Obj, full_pods: list[Obj]) -> tuple[Any, Any]:
    """compute_status on the full objects and on their compacted cache forms."""
    adapter = adapter_of(full_job)
    full = compute_status(adapter, copy.deepcopy(full_job), copy.deepcopy(full_pods), [], now=T0)
    job = compact_job(_wire(full_job))
    pods = [slim_pod(_wire(p)) for p in full_pods]
    compact = compute_status(adapter, job, pods, [], now=T0)
    for decision in (full, compact):
        assert decision.error is None and not decision.create_pods
    assert compact.delete_pods == full.delete_pods
    assert compact.delete_job == full.delete_job
    assert compact.requeue_after == full.requeue_after
    assert [(e.type, e.reason) for e in compact.events] == [(e.type, e.reason) for e in full.events]
    assert compact.counters == full.counters
    return full, compact


@pytest.mark.parametrize("policy", ["None", "Running", "All"])
def test_finished_branch_decides_the_same_on_the_compacted_cache(policy: str) -> None:
    job = finished_job(run_policy={"ttlSecondsAfterFinished": 600, "cleanPodPolicy": policy})
    pods = job_pods(job)
    pods[1] = kubelet_pod(job, "Worker", 0, "Running")  # a worker still running at the end
    _, compact = _same_decision(job, pods)
    assert compact.requeue_after == pytest.approx(540.0)
    assert compact.delete_pods == {"None": [], "Running": ["train-worker-0"], "All": [
        "train-master-0", "train-worker-0", "train-worker-1", "train-worker-2"
    ]}[policy]  # fmt: skip


def test_a_finished_job_after_its_cleanup_decides_nothing_until_its_ttl() -> None:
    job = finished_job(run_policy={"ttlSecondsAfterFinished": 600})
    _, compact = _same_decision(job, job_pods(job))
    assert not compact.status_changed and not compact.delete_pods and not compact.events
    assert compact.requeue_after == pytest.approx(540.0)


def test_ttl_due_deletes_from_the_compacted_cache() -> None:
    job = finished_job(run_policy={"ttlSecondsAfterFinished": 30})
    _, compact = _same_decision(job, job_pods(job))
    assert compact.delete_job and compact.counters.deleted == 1
    assert [e.reason for e in compact.events] == ["SuccessfulDeleteJob"]


def test_succeeded_fold_is_a_patch_of_the_counts_only() -> None:
    statuses = {
        "Master": {"succeeded": 1, "selector": "s"},
        "Worker": {"active": 2, "selector": "s"},
    }
    job = finished_job(statuses=statuses)
    full, compact = _same_decision(job, job_pods(job))
    assert compact.status_changed and full.status_changed
    cached = compact_job(_wire(job))["status"]
    patch = merge_patch_of(cached, compact.status)
    assert patch == {"replicaStatuses": {"Worker": {"active": None, "succeeded": 2}}}


def test_mpi_deprecated_clean_pod_policy_is_read_from_the_compacted_cache() -> None:
    job = finished_job("MPIJob", {"Launcher": 1, "Worker": 2}, cleanPodPolicy="Running")
    pods = [kubelet_pod(job, "Launcher", 0, "Succeeded"), kubelet_pod(job, "Worker", 0, "Running")]
    _, compact = _same_decision(job, pods)
    assert compact.delete_pods == ["train-worker-0"]


@pytest.mark.parametrize("ttl, ago, deleted", [(10, 60, True), (600, 60, False)])
def test_an_invalid_failed_job_still_gets_its_ttl(ttl: int, ago: float, deleted: bool) -> None:
    """Validation used to come first, so a job failed for being invalid was never deleted."""
    job = finished_job(
        replicas={"Master": 2, "Bogus": 1},  # two masters and an unknown type: invalid
        outcome="Failed",
        finished_ago=ago,
        run_policy={"ttlSecondsAfterFinished": ttl},
        statuses={},
    )
    adapter = adapter_of(job)
    from kubetrain.reconcilers.api.defaults import default_job
    from kubetrain.reconcilers.api.validation import validate

    assert validate(adapter.kind, default_job(adapter.kind, job))  # it is invalid
    for cached in (job, compact_job(_wire(job))):
        decision = compute_status(adapter, copy.deepcopy(cached), [], [], now=T0)
        assert decision.error is None and not decision.status_changed
        assert decision.delete_job is deleted
        if not deleted:
            assert decision.requeue_after == pytest.approx(ttl - ago)
            assert decision.events == []


def test_finished_pod_keeps_what_the_state_machine_reads() -> None:
    job = finished_job(replicas={"Worker": 1})
    pod = kubelet_pod(job, "Worker", 0, "Failed", exit_code=137)
    pod["status"]["containerStatuses"][0]["restartCount"] = 3
    pod["status"]["reason"] = "Evicted"
    slim = slim_pod(_wire(pod))
    assert set(slim) == {"apiVersion", "kind", "metadata", "status"}
    assert set(slim["metadata"]) == {
        "name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences"
    }  # fmt: skip
    assert slim["metadata"]["labels"] == pod["metadata"]["labels"]
    assert slim["status"] == {
        "phase": "Failed",
        "reason": "Evicted",
        "containerStatuses": [
            {"name": "pytorch", "restartCount": 3, "state": {"terminated": {"exitCode": 137}}}
        ],
    }
    kind = adapter_of(job).kind
    for policy in ("ExitCode", "OnFailure", "Never"):
        args = {"restart_policy": policy, "default_container": kind.default_container}
        assert failure_verdict(slim, **args) == failure_verdict(pod, **args)
    assert counted_restarts(job, kind, [slim]) == counted_restarts(job, kind, [pod]) == 3
    assert slim_pod(copy.deepcopy(slim)) == slim


def test_equal_finished_pod_statuses_are_one_shared_object() -> None:
    job = finished_job()
    a, b = (slim_pod(_wire(p)) for p in job_pods(job)[:2])
    assert a["status"] is b["status"]
    running = slim_pod(_wire(kubelet_pod(job, "Worker", 2, "Running")))
    assert "spec" not in running and running["status"]["phase"] == "Running"
    assert running["status"]["containerStatuses"][0]["restartCount"] == 0


def test_merge_patch_of_sends_only_changes() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "gone": True}
    new = {"a": 1, "b": {"c": 2, "d": 4}, "e": [1, 2], "added": "x"}
    assert merge_patch_of(old, new) == {"b": {"d": 4}, "e": [1, 2], "added": "x", "gone": None}
    assert merge_patch_of(new, new) == {}


def test_bytes_per_cached_finished_job_and_its_4_pods() -> None:
    """Measured as held: many jobs parsed off the wire, shared strings counted once."""
    n = 300
    jobs, pods, raw_jobs, raw_pods = [], [], [], []
    for i in range(n):
        job = finished_job(name=f"train-{i}", uid=f"77377a51-b7a9-475f-9743-{i:012d}")
        full_pods = job_pods(job)
        raw_jobs.append(_wire(job))
        raw_pods.extend(_wire(p) for p in full_pods)
        jobs.append(compact_job(_wire(job)))
        pods.extend(slim_pod(_wire(p)) for p in full_pods)
    per_job = deep_sizeof(*jobs) / n
    per_job_pods = deep_sizeof(*pods) / n
    raw = deep_sizeof(*raw_jobs, *raw_pods) / n
    print(
        f"cached finished PyTorchJob {per_job:.0f} B, its 4 pods {per_job_pods:.0f} B "
        f"(uncompacted: job + pods {raw:.0f} B)"
    )
    assert per_job < 2048
    assert per_job_pods < 4 * 1024
    assert per_job + per_job_pods < raw / 4


def test_slim_pod_keeps_what_the_reconciler_reads() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"a": "b"},
            "annotations": {"big": "x" * 1000},
            "managedFields": [{}],
            "ownerReferences": [{"uid": "u"}],
        },
        "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "podIP": "1.2.3.4",
            "containerStatuses": [
                {
                    "name": "c",
                    "restartCount": 2,
                    "state": {"terminated": {"exitCode": 137}},
                    "image": "i",
                    "imageID": "sha",
                }
            ],
        },
    }
    slim = slim_pod(pod)
    assert "spec" not in slim and "annotations" not in slim["metadata"]
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["ownerReferences"] == [{"uid": "u"}]
    assert slim["status"] == {
        "phase": "Failed",
        "reason": "Evicted",
        "containerStatuses": [
            {"name": "c", "restartCount": 2, "state": {"terminated": {"exitCode": 137}}}
        ],
    }
