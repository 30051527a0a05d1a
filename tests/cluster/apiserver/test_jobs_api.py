"""batch/v1 Job on the API server: the defaults, the generated selector and labels, and the 422s
kube gives for the common mistakes (``cluster/apiserver/jobs.py``, ``jobs_validation.py``).

Only HTTP: the same tests run against a real kube-apiserver (``--apiserver=real``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from apiserver_helpers import Raw

pytestmark = pytest.mark.http_api

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, **spec: Any) -> dict[str, Any]:
    template_spec = spec.pop("template_spec", {"restartPolicy": "Never"})
    template_meta = spec.pop("template_meta", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": True,  # no pods: these tests are about the API only
            "template": {
                "metadata": template_meta,
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}], **template_spec},
            },
            **spec,
        },
    }


def causes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in body["details"]["causes"]]


async def test_defaults_and_generated_selector(raw: Raw) -> None:
    status, body, _ = await raw.post(JOBS, job("defaults", template_meta={"labels": {"app": "x"}}))
    assert status == 201, body
    uid = body["metadata"]["uid"]
    spec = body["spec"]
    assert spec["completions"] == 1 and spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is True
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["manualSelector"] is False  # kube v1.36 stores it
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "x",
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "defaults",
        "controller-uid": uid,
        "job-name": "defaults",
    }
    # the Job's labels are the template's map itself (Go shares it), generated ones included
    assert body["metadata"]["labels"] == spec["template"]["metadata"]["labels"]
    pod_spec = spec["template"]["spec"]
    assert pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["schedulerName"] == "default-scheduler"
    container = pod_spec["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePolicy"] == "File"
    assert body["metadata"]["generation"] == 1
    assert "status" not in body or not body["status"].get("conditions")


async def test_only_parallelism_set_and_per_index_backoff_defaults(raw: Raw) -> None:
    status, body, _ = await raw.post(JOBS, job("par", parallelism=3))
    assert status == 201, body
    assert body["spec"]["parallelism"] == 3 and "completions" not in body["spec"]
    status, body, _ = await raw.post(
        JOBS, job("perindex", completionMode="Indexed", completions=3, backoffLimitPerIndex=1)
    )
    assert status == 201, body
    assert body["spec"]["backoffLimit"] == 2147483647
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    status, body, _ = await raw.post(JOBS, job("pfp", podFailurePolicy=policy))
    assert status == 201, body
    assert body["spec"]["podReplacementPolicy"] == "Failed"
    assert body["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


async def test_restart_policy_must_be_never_or_on_failure(raw: Raw) -> None:
    status, body, _ = await raw.post(JOBS, job("always", template_spec={}))
    assert status == 422, body
    assert (
        "spec.template.spec.restartPolicy",
        'Required value: valid values: "OnFailure", "Never"',
    ) in causes(body)
    assert body["message"].startswith('Job.batch "always" is invalid: ')


async def test_indexed_requires_completions(raw: Raw) -> None:
    status, body, _ = await raw.post(JOBS, job("idx", completionMode="Indexed", parallelism=2))
    assert status == 422, body
    assert ("spec.completions", "Required value: when completion mode is Indexed") in causes(body)


async def test_per_index_fields_require_indexed_mode(raw: Raw) -> None:
    status, body, _ = await raw.post(JOBS, job("nix", backoffLimitPerIndex=1))
    assert status == 422, body
    assert (
        "spec.backoffLimitPerIndex",
        "Invalid value: 1: requires indexed completion mode",
    ) in causes(body)


async def test_negative_counts(raw: Raw) -> None:
    status, body, _ = await raw.post(JOBS, job("neg", backoffLimit=-1, activeDeadlineSeconds=-5))
    assert status == 422, body
    found = causes(body)
    assert ("spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0") in found
    assert (
        "spec.activeDeadlineSeconds",
        "Invalid value: -5: must be greater than or equal to 0",
    ) in found


async def test_manual_selector_must_match_template_labels(raw: Raw) -> None:
    body_in = job(
        "manual",
        manualSelector=True,
        selector={"matchLabels": {"app": "a"}},
        template_meta={"labels": {"app": "b"}},
    )
    status, body, _ = await raw.post(JOBS, body_in)
    assert status == 422, body
    (_field, message), *_ = [c for c in causes(body) if c[0] == "spec.template.metadata.labels"]
    assert message.endswith("`selector` does not match template `labels`")


async def test_selector_without_manual_selector_is_refused(raw: Raw) -> None:
    status, body, _ = await raw.post(
        JOBS,
        job(
            "autosel",
            selector={"matchLabels": {"app": "a"}},
            template_meta={"labels": {"app": "a"}},
        ),
    )
    assert status == 422, body
    assert any(
        f == "spec.selector" and m.endswith("`selector` not auto-generated")
        for f, m in causes(body)
    ), body


async def test_pod_failure_policy_rules_are_checked(raw: Raw) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}]}
    status, body, _ = await raw.post(JOBS, job("pfpbad", podFailurePolicy=policy))
    assert status == 422, body
    assert (
        "spec.podFailurePolicy.rules[0].onExitCodes.values[0]",
        "Invalid value: 0: must not be 0 for the In operator",
    ) in causes(body)
    status, body, _ = await raw.post(
        JOBS,
        job(
            "pfponfailure",
            podFailurePolicy={
                "rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]
            },
            template_spec={"restartPolicy": "OnFailure"},
        ),
    )
    assert status == 422, body
    assert (
        "spec.template.spec.restartPolicy",
        'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified',
    ) in causes(body)


async def test_success_policy_requires_indexed(raw: Raw) -> None:
    status, body, _ = await raw.post(
        JOBS, job("sp", successPolicy={"rules": [{"succeededCount": 1}]})
    )
    assert status == 422, body
    assert [f for f, _ in causes(body)] == ["spec.successPolicy"]
    assert causes(body)[0][1].endswith("requires indexed completion mode")


async def put_latest(
    raw: Raw, path: str, change: Callable[[dict[str, Any]], None]
) -> tuple[int, dict[str, Any]]:
    """PUT ``change`` applied to the latest object at ``path``.

    The Job controller of a real control plane writes a new Job's status meanwhile; a 409 means the
    read was stale, so read again (at most five times) and re-apply the same change.
    """
    status, body = 409, {}
    for _ in range(5):
        _, latest, _ = await raw.get(path)
        change(latest)
        status, body, _ = await raw.put(path, latest)
        if status != 409:
            break
    return status, body


def set_pod_spec(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"][field] = value

    return change


def set_image(image: str) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return change


async def test_template_immutable_unless_suspended_and_never_started(raw: Raw) -> None:
    status, created, _ = await raw.post(JOBS, job("mut"))
    assert status == 201, created
    # suspended, never started: scheduling directives may change...
    status, updated = await put_latest(
        raw, f"{JOBS}/mut", set_pod_spec("nodeSelector", {"disk": "ssd"})
    )
    assert status == 200, updated
    assert updated["metadata"]["generation"] == 2
    # ...the image may not
    status, body = await put_latest(raw, f"{JOBS}/mut", set_image("busybox:1.37"))
    assert status == 422, body
    # kube v1.36 compares the pod spec alone while suspended and never started
    assert [f for f, _ in causes(body)] == ["spec.template.spec"]
    assert causes(body)[0][1].endswith("field is immutable")
    # not suspended: the whole template is compared (no pod runs: the cluster has no nodes)
    status, running, _ = await raw.post(JOBS, job("mut-running", suspend=False))
    assert status == 201, running
    status, body = await put_latest(raw, f"{JOBS}/mut-running", set_image("busybox:1.37"))
    assert status == 422, body
    assert [f for f, _ in causes(body)] == ["spec.template"]
    # completions of a NonIndexed Job never change
    status, body, _ = await raw.patch(f"{JOBS}/mut", {"spec": {"completions": 3}})
    assert status == 422, body
    assert [f for f, _ in causes(body)] == ["spec.completions"]


async def test_indexed_name_too_long_for_hostnames(raw: Raw) -> None:
    name = "j" * 62
    status, body, _ = await raw.post(JOBS, job(name, completionMode="Indexed", completions=10))
    assert status == 422, body
    assert any(
        f == "metadata.name" and "will not able to create pod with invalid DNS label" in m
        for f, m in causes(body)
    ), body
