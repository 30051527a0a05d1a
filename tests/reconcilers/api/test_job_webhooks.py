"""The job webhooks' handlers (defaulting and validation) and the configurations that route to
them; over HTTP they are tried in tests/e2e/test_webhooks.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from kubetrain.engine.webhook.admission import AdmissionResponse, Handler
from kubetrain.reconcilers.api import webhooks
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import ALL_KINDS, BY_KIND, PYTORCHJOB, JobKind

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "webhooks"

Obj = dict[str, Any]


def minimal_job(kind: JobKind, name: str = "job-1") -> Obj:
    """A job as plain YAML usually has it: no runPolicy, no replicas, no restart policy."""
    rtype = "Launcher" if kind.kind == "MPIJob" else kind.replica_types[0]
    if kind.kind in ("PyTorchJob", "XGBoostJob"):
        rtype = "Master"
    container = {"name": kind.default_container, "image": "busybox"}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {kind.replica_field: {rtype: {"template": {"spec": {"containers": [container]}}}}},
    }


def review(operation: str, obj: Obj | None, old: Obj | None = None) -> dict[str, Any]:
    return {"uid": "u-1", "operation": operation, "object": obj, "oldObject": old}


def decide(handler: Handler, request: dict[str, Any]) -> AdmissionResponse:
    response = handler(request)
    assert isinstance(response, AdmissionResponse)
    return response


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_defaulter_patch_gives_the_controllers_defaults_and_is_idempotent(kind: JobKind) -> None:
    job = minimal_job(kind)
    response = decide(webhooks.job_defaulter(kind), review("CREATE", job))
    assert response.allowed and response.patch
    patched = jsonpatch.apply_patch(job, list(response.patch))
    assert patched == default_job(kind, job)
    assert patched["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
    again = decide(webhooks.job_defaulter(kind), review("UPDATE", patched, patched))
    assert again.allowed and not again.patch


def test_defaulter_camel_cases_replica_keys_in_the_stored_object() -> None:
    job = minimal_job(PYTORCHJOB)
    specs = job["spec"]["pytorchReplicaSpecs"]
    specs["worker"] = copy.deepcopy(specs["Master"])
    response = decide(webhooks.job_defaulter(PYTORCHJOB), review("CREATE", job))
    patched = jsonpatch.apply_patch(job, list(response.patch or []))
    assert sorted(patched["spec"]["pytorchReplicaSpecs"]) == ["Master", "Worker"]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_validator_accepts_the_defaulted_job(kind: JobKind) -> None:
    job = default_job(kind, minimal_job(kind))
    response = decide(webhooks.job_validator(kind), review("CREATE", job))
    assert response.allowed, response.status


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_refusal_is_an_invalid_status_with_a_cause_per_problem(kind: JobKind) -> None:
    job = default_job(kind, minimal_job(kind, name="Bad_Name"))
    rspec = next(iter(job["spec"][kind.replica_field].values()))
    rspec["template"]["spec"]["containers"][0].pop("image")
    response = decide(webhooks.job_validator(kind), review("CREATE", job))
    assert not response.allowed and response.status is not None
    status = response.status
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith(f'{kind.kind}.kubeflow.org "Bad_Name" is invalid: [')
    causes = status["details"]["causes"]
    fields = [c["field"] for c in causes]
    assert "metadata.name" in fields
    assert any(f.endswith(".containers[0].image") for f in fields)
    assert all(c["reason"].startswith("FieldValue") and c["message"] for c in causes)
    assert status["details"]["kind"] == kind.kind and status["details"]["group"] == "kubeflow.org"


def test_update_changing_managed_by_is_refused() -> None:
    old = default_job(PYTORCHJOB, minimal_job(PYTORCHJOB))
    new = copy.deepcopy(old)
    new["spec"]["runPolicy"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    response = decide(webhooks.job_validator(PYTORCHJOB), review("UPDATE", new, old))
    assert not response.allowed and response.status is not None
    assert "spec.runPolicy.managedBy" in response.status["message"]
    assert "immutable" in response.status["message"]


def test_update_leaving_spec_alone_is_ratcheted() -> None:
    """An object stored before the webhook existed can still be labelled (or finalized)."""
    old = minimal_job(PYTORCHJOB, name="Legacy_Name")  # invalid name, no defaults
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"team": "a"}
    assert decide(webhooks.job_validator(PYTORCHJOB), review("UPDATE", new, old)).allowed
    new["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 1
    refused = decide(webhooks.job_validator(PYTORCHJOB), review("UPDATE", new, old))
    assert not refused.allowed and refused.status is not None
    assert "metadata.name" in refused.status["message"]


def test_deprecated_field_is_a_warning() -> None:
    job = default_job(PYTORCHJOB, minimal_job(PYTORCHJOB))
    job["spec"]["pytorchReplicaSpecs"]["Worker"] = copy.deepcopy(
        job["spec"]["pytorchReplicaSpecs"]["Master"]
    )
    job["spec"].pop("nprocPerNode")
    job["spec"]["elasticPolicy"] = {"nProcPerNode": 2, "minReplicas": 1, "maxReplicas": 1}
    response = decide(webhooks.job_validator(PYTORCHJOB), review("CREATE", job))
    assert response.allowed, response.status
    assert any("nProcPerNode is deprecated" in w for w in response.warnings)


def test_handlers_let_through_requests_without_an_object() -> None:
    kind = BY_KIND["TFJob"]
    assert decide(webhooks.job_validator(kind), review("DELETE", None, {})).allowed
    assert decide(webhooks.job_defaulter(kind), review("DELETE", None, {})).allowed


def test_paths_are_the_references() -> None:
    assert webhooks.validate_path(PYTORCHJOB) == "/validate-kubeflow-org-v1-pytorchjob"
    assert webhooks.mutate_path(BY_KIND["MPIJob"]) == "/mutate-kubeflow-org-v1-mpijob"


def test_configurations_cover_every_kind_and_fail_closed() -> None:
    # the kinds' hooks; Trainer's (trainer=True, the default): tests/reconcilers/trainer/test_webhooks.py
    mutating, validating = webhooks.webhook_configurations(trainer=False)
    assert mutating["metadata"]["name"] == webhooks.MUTATING_CONFIGURATION
    assert validating["metadata"]["name"] == webhooks.VALIDATING_CONFIGURATION
    for config, path_of in ((mutating, webhooks.mutate_path), (validating, webhooks.validate_path)):
        hooks = config["webhooks"]
        assert [h["rules"][0]["resources"] for h in hooks] == [[k.plural] for k in ALL_KINDS]
        for hook, kind in zip(hooks, ALL_KINDS, strict=True):
            assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
            assert hook["timeoutSeconds"] <= 10 and hook["admissionReviewVersions"] == ["v1"]
            assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
            assert hook["clientConfig"]["service"]["path"] == path_of(kind)
            assert "caBundle" not in hook["clientConfig"]


def test_configurations_by_url_carry_the_ca_bundle() -> None:
    _, validating = webhooks.webhook_configurations(
        [PYTORCHJOB], url="https://127.0.0.1:9443/", ca_bundle="Q0E=", trainer=False
    )
    (hook,) = validating["webhooks"]
    assert hook["clientConfig"] == {
        "url": "https://127.0.0.1:9443/validate-kubeflow-org-v1-pytorchjob",
        "caBundle": "Q0E=",
    }


def test_deploy_yaml_is_the_generated_configurations() -> None:
    path = DEPLOY / webhooks.WEBHOOKS_FILE
    assert path.read_text() == webhooks.render_yaml(webhooks.webhook_configurations()), (
        f"{path} is stale: run `python -m kubetrain.reconcilers.api.webhooks deploy/webhooks`"
    )
    docs = list(yaml.safe_load_all(path.read_text()))
    assert [d["kind"] for d in docs] == [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ]
