"""Pod building and per-type planning (reference 2.2, 2.7) with kubetrain's sentinel decision."""

from __future__ import annotations

import pytest
from jobkit import make_job, make_pod

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.pods import build_pod, failure_verdict, plan_pods
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.kinds.base import DomainOptions

TF = ADAPTERS["TFJob"]


def test_build_pod_labels_meta_restart_policy_and_owner() -> None:
    job = make_job("TFJob", {"Worker": 2}, restart_policy="ExitCode")
    tmpl = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    tmpl["metadata"] = {
        "labels": {"team": "a", "training.kubeflow.org/replica-type": "wrong"},
        "annotations": {"x": "1"},
        "finalizers": ["f"],
    }
    tmpl["spec"]["restartPolicy"] = "Always"
    pod, events = build_pod(TF, default_job(TF.kind, job), "Worker", 1, options=DomainOptions())
    meta = pod["metadata"]
    assert meta["name"] == "j-worker-1" and meta["namespace"] == "ns"
    assert meta["labels"]["team"] == "a"
    assert meta["labels"]["training.kubeflow.org/replica-type"] == "worker"
    assert meta["labels"]["training.kubeflow.org/replica-index"] == "1"
    assert "training.kubeflow.org/job-role" not in meta["labels"]
    assert meta["annotations"] == {"x": "1"} and meta["finalizers"] == ["f"]
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert [e.reason for e in events] == ["SetPodTemplateRestartPolicy"]
    assert tmpl["spec"]["restartPolicy"] == "Always", "template not mutated"
    assert "env" not in tmpl["spec"]["containers"][0]


def test_plan_creates_missing_deletes_out_of_range_skips_terminating() -> None:
    job = default_job(TF.kind, make_job("TFJob", {"Worker": 3}))
    pods = [
        make_pod(job, "Worker", 0),
        make_pod(job, "Worker", 3),
        make_pod(job, "Worker", 4, deleting=True),
    ]
    plan = plan_pods(TF, job, "Worker", pods)
    assert plan.create == [1, 2]
    assert plan.delete == ["j-worker-3"]
    dup = plan_pods(TF, job, "Worker", [make_pod(job, "Worker", 0), make_pod(job, "Worker", 0)])
    assert dup.duplicates == [0] and dup.create == [1, 2]


@pytest.mark.parametrize(
    ("policy", "code", "reason", "action"),
    [
        ("ExitCode", 137, None, "restart"),
        ("ExitCode", 1, None, "failed"),
        ("ExitCode", None, "Evicted", "restart"),
        ("ExitCode", None, None, "failed"),
        ("OnFailure", 1, None, "restart"),
        ("Always", None, None, "restart"),
        ("Never", 137, None, "none"),
    ],
)
def test_failed_pod_actions(policy: str, code: int | None, reason: str | None, action: str) -> None:
    job = default_job(TF.kind, make_job("TFJob", {"Worker": 1}, restart_policy=policy))
    pod = make_pod(job, "Worker", 0, "Failed", exit_code=code, reason=reason)
    plan = plan_pods(TF, job, "Worker", [pod])
    got = "restart" if plan.restart else "failed" if plan.failed else "none"
    assert got == action
    assert plan.exited == ([("j-worker-0", code)] if code is not None else [])


def test_init_container_exit_code_decides_without_default_container() -> None:
    job = make_job("TFJob", {"Worker": 1}, restart_policy="ExitCode")
    pod = make_pod(job, "Worker", 0, "Failed")
    pod["status"]["initContainerStatuses"] = [
        {"name": "init", "state": {"terminated": {"exitCode": 2}}}
    ]
    verdict = failure_verdict(pod, restart_policy="ExitCode", default_container="tensorflow")
    assert not verdict.retryable and verdict.exit_code == 2
    pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] = 143
    assert failure_verdict(pod, restart_policy="ExitCode", default_container="tensorflow").retryable
