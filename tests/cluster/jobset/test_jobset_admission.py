"""JobSet's webhook defaulting and validation and the CRD's CEL rules, as pure functions
(``cluster/jobset/defaults.py``, ``validation.py``); the wording is JobSet's and kube's."""

from __future__ import annotations

from typing import Any

from kubetrain.cluster.jobset.defaults import default_jobset
from kubetrain.cluster.jobset.validation import cel_causes, create_causes, update_causes

Obj = dict[str, Any]


def js(name: str = "js", *rjobs: Obj, **spec: Any) -> Obj:
    obj: Obj = {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"replicatedJobs": list(rjobs or [rjob("w")]), **spec},
    }
    default_jobset(obj)
    return obj


def rjob(name: str, replicas: int = 1, **extra: Any) -> Obj:
    return {
        "name": name,
        "replicas": replicas,
        "groupName": "default",
        "template": {"spec": {"completions": 2, "template": {"spec": {"containers": []}}}},
        **extra,
    }


def messages(causes: list[dict[str, str]]) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in causes]


def test_defaults() -> None:
    obj = js("x", failurePolicy={"rules": [{"action": "FailJobSet"}]})
    spec = obj["spec"]
    assert spec["successPolicy"] == {"operator": "All"}
    assert spec["startupPolicy"] == {"startupPolicyOrder": "AnyOrder"}
    assert spec["network"] == {"enableDNSHostnames": True, "publishNotReadyAddresses": True}
    assert spec["failurePolicy"]["rules"][0]["name"] == "failurePolicyRule0"
    job = spec["replicatedJobs"][0]["template"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_defaults_keep_given_values() -> None:
    obj = js("x", network={"enableDNSHostnames": False}, successPolicy={"operator": "Any"})
    assert obj["spec"]["network"] == {"enableDNSHostnames": False, "publishNotReadyAddresses": True}
    assert obj["spec"]["successPolicy"] == {"operator": "Any"}


def test_valid_jobset_has_no_causes() -> None:
    assert create_causes(js()) == []


def test_job_and_pod_name_length() -> None:
    causes = create_causes(js("a" * 56))
    assert messages(causes) == [
        'spec.replicatedJobs[0].name: Invalid value: "'
        + "a" * 56
        + '-w-0": JobSet name is too long, pod names generated for this JobSet will exceed 63 '
        "characters"
    ]
    causes = create_causes(js("a" * 60))
    assert "job names generated for this JobSet will exceed 63 characters" in causes[0]["message"]


def test_internal_errors_are_worded_as_field_internal_error() -> None:
    obj = js("x", rjob("a"), rjob("b", dependsOn=[{"name": "zzz", "status": "Ready"}]))
    obj["spec"]["replicatedJobs"][0]["dependsOn"] = [{"name": "b", "status": "Ready"}]
    assert messages(create_causes(obj)) == [
        "<nil>: Internal error: DependsOn can't be set for the first ReplicatedJob",
        "<nil>: Internal error: replicatedJob: a cannot depend on replicatedJob: b",
        "<nil>: Internal error: replicatedJob: b cannot depend on replicatedJob: zzz",
    ]
    assert create_causes(obj)[0]["reason"] == "InternalError"


def test_failure_policy_rules() -> None:
    policy = {
        "rules": [
            {"name": "1bad", "action": "FailJobSet", "onJobFailureReasons": ["Nope"]},
            {"name": "ok", "action": "RestartJobSet", "targetReplicatedJobs": ["missing"]},
            {"name": "ok", "action": "FailJobSet"},
        ]
    }
    texts = messages(create_causes(js("x", failurePolicy=policy)))
    assert any("invalid failure policy rule name '1bad'" in t for t in texts)
    assert any("invalid job failure reason 'Nope'" in t for t in texts)
    assert any("invalid replicatedJob name 'missing' in failure policy" in t for t in texts)
    assert any("rules with indices [1 2] all have the same name 'ok'" in t for t in texts)
    gated = {"rules": [{"name": "r", "action": "RestartJob"}]}
    assert messages(create_causes(js("x", failurePolicy=gated))) == [
        "<nil>: Internal error: RestartJob and RestartJobAndIgnoreMaxRestarts failure policy "
        "actions are not allowed when RestartJob feature gate is disabled"
    ]


def test_coordinator_and_subdomain() -> None:
    bad = js("x", coordinator={"replicatedJob": "w", "jobIndex": 3})
    assert (
        "coordinator job index 3 is invalid for replicatedJob w" in create_causes(bad)[0]["message"]
    )
    sub = js("x", network={"subdomain": "Bad_Sub"})
    assert all(c["field"] == "spec.network.subdomain" for c in create_causes(sub))


def test_update_immutability_and_suspended_template() -> None:
    old = js("x")
    new = js("x")
    new["spec"]["replicatedJobs"][0]["replicas"] = 3
    assert messages(update_causes(old, new))[0].startswith("spec.replicatedJobs: Invalid value: ")
    assert messages(update_causes(old, new))[0].endswith(": field is immutable")
    labelled = js("x", suspend=True)
    pod = labelled["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    pod.setdefault("metadata", {})["labels"] = {"queue": "a"}
    pod["spec"]["nodeSelector"] = {"zone": "b"}
    assert update_causes(js("x", suspend=True), labelled) == []
    assert update_causes(js("x"), labelled) == []  # the new one suspends: allowed
    running = js("x")
    running["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"] = {
        "labels": {"queue": "a"}
    }
    assert len(update_causes(js("x"), running)) == 1


def test_cel_rules() -> None:
    both = js("x", rjob("a"), rjob("b", dependsOn=[{"name": "a", "status": "Ready"}]))
    both["spec"]["startupPolicy"] = {"startupPolicyOrder": "InOrder"}
    assert messages(cel_causes(both, None)) == [
        "spec: Invalid value: StartupPolicy and DependsOn APIs are mutually exclusive"
    ]
    old, new = js("x"), js("x")
    new["spec"]["network"] = {"enableDNSHostnames": False, "publishNotReadyAddresses": True}
    assert messages(cel_causes(new, old)) == ["spec.network: Invalid value: Value is immutable"]
