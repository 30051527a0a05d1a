"""kubeflow.org/v2beta1 MPIJob: defaulting (default_test.go), validation (validation_test.go,
with messages), the update rules, the origin annotation through conversion, the webhooks'
dispatch on it, and the CRD serving both versions."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from kubetrain.engine.webhook.admission import AdmissionResponse, Handler
from kubetrain.engine.webhook.conversion import ConversionError
from kubetrain.engine.webhook.server import WebhookServer
from kubetrain.reconcilers.api import crds, webhooks
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import MPIJOB, PYTORCHJOB
from kubetrain.reconcilers.api.mpi_conversion import CONVERSION_PATH, convert_mpijob
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    ORIGIN_ANNOTATION,
    ORIGIN_FIELD,
    default_mpijob_v2beta1,
    validate_mpijob_v2beta1,
    validate_mpijob_v2beta1_update,
    written_as_v2beta1,
)
from kubetrain.reconcilers.api.validation import FieldError

Obj = dict[str, Any]
V1 = "kubeflow.org/v1"
V2 = "kubeflow.org/v2beta1"


def replica(replicas: int | None = None, restart: str | None = None, containers: int = 1) -> Obj:
    out: Obj = {"template": {"spec": {"containers": [{}] * containers}}}
    if replicas is not None:
        out["replicas"] = replicas
    if restart is not None:
        out["restartPolicy"] = restart
    return out


def job(name: str = "foo", **spec: Any) -> Obj:
    return {"apiVersion": V2, "kind": "MPIJob", "metadata": {"name": name}, "spec": spec}


def valid_spec(**over: Any) -> Obj:
    spec: Obj = {
        "slotsPerWorker": 2,
        "runPolicy": {"cleanPodPolicy": "Running"},
        "sshAuthMountPath": "/home/mpiuser/.ssh",
        "mpiImplementation": "Intel",
        "mpiReplicaSpecs": {"Launcher": replica(1, "Never")},
    }
    spec.update(over)
    return spec


def fields(errors: list[FieldError]) -> list[tuple[str, str]]:
    return [(e.type, e.field) for e in errors]


# -- defaulting (default_test.go) ----------------------------------------------------------------

BASE_DEFAULTS: Obj = {
    "slotsPerWorker": 1,
    "runPolicy": {"cleanPodPolicy": "None"},
    "sshAuthMountPath": "/root/.ssh",
    "mpiImplementation": "OpenMPI",
    "launcherCreationPolicy": "AtStartup",
}


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({}, BASE_DEFAULTS),
        *[
            (
                {
                    "slotsPerWorker": 10,
                    "runPolicy": {
                        "cleanPodPolicy": "Running",
                        "ttlSecondsAfterFinished": 2,
                        "activeDeadlineSeconds": 3,
                        "backoffLimit": 4,
                    },
                    "sshAuthMountPath": "/home/mpiuser/.ssh",
                    "mpiImplementation": impl,
                    "launcherCreationPolicy": "AtStartup",
                },
                None,
            )
            for impl in ("Intel", "MPICH")
        ],
        (
            {"mpiReplicaSpecs": {"Launcher": {}}},
            {
                **BASE_DEFAULTS,
                "mpiReplicaSpecs": {"Launcher": {"replicas": 1, "restartPolicy": "OnFailure"}},
            },
        ),
        (
            {"mpiReplicaSpecs": {"Worker": {}}},
            {
                **BASE_DEFAULTS,
                "mpiReplicaSpecs": {"Worker": {"replicas": 0, "restartPolicy": "Never"}},
            },
        ),
    ],
    ids=["base", "overridden-intel", "overridden-mpich", "launcher", "worker"],
)
def test_defaults(spec: Obj, want: Obj | None) -> None:
    obj = {"spec": spec}
    before = copy.deepcopy(obj)
    got = default_mpijob_v2beta1(obj)
    assert got["spec"] == (want if want is not None else spec)
    assert obj == before  # never mutates


def test_defaults_keep_set_values_and_odd_shapes() -> None:
    obj = job(
        runPolicy={"cleanPodPolicy": "All", "suspend": True},
        sshAuthMountPath="",
        mpiReplicaSpecs={"Launcher": "odd", "Worker": replica(3, "OnFailure")},
    )
    got = default_mpijob_v2beta1(obj)
    assert got["spec"]["runPolicy"] == {"cleanPodPolicy": "All", "suspend": True}
    assert got["spec"]["sshAuthMountPath"] == "/root/.ssh"  # Go's == "" default
    assert got["spec"]["mpiReplicaSpecs"]["Launcher"] == "odd"
    assert got["spec"]["mpiReplicaSpecs"]["Worker"] == replica(3, "OnFailure")
    assert default_mpijob_v2beta1({"spec": "nope"}) == {"spec": "nope"}
    assert default_mpijob_v2beta1(got) == got  # idempotent


# -- validation (validation_test.go) -------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        valid_spec(),
        valid_spec(
            mpiReplicaSpecs={"Launcher": replica(1, "OnFailure"), "Worker": replica(3, "Never")}
        ),
        valid_spec(mpiImplementation="MPICH"),
        valid_spec(
            mpiImplementation="MPICH",
            mpiReplicaSpecs={"Launcher": replica(1, "OnFailure"), "Worker": replica(3, "Never")},
        ),
    ],
    ids=["intel", "intel-worker", "mpich", "mpich-worker"],
)
def test_valid_jobs(spec: Obj) -> None:
    assert validate_mpijob_v2beta1(job(**spec)) == []


def test_empty_job() -> None:
    errors = validate_mpijob_v2beta1({"metadata": {}, "spec": {}})
    assert fields(errors) == [
        ("Invalid", "metadata.name"),
        ("Required", "spec.mpiReplicaSpecs"),
        ("Required", "spec.slotsPerWorker"),
        ("Required", "spec.runPolicy.cleanPodPolicy"),
        ("Required", "spec.sshAuthMountPath"),
        ("NotSupported", "spec.mpiImplementation"),
    ]
    assert [str(e) for e in errors[1:]] == [
        "spec.mpiReplicaSpecs: Required value: must have replica specs",
        "spec.slotsPerWorker: Required value: must have number of slots per worker",
        "spec.runPolicy.cleanPodPolicy: Required value: must have clean Pod policy",
        "spec.sshAuthMountPath: Required value: must have a mount path for SSH credentials",
        'spec.mpiImplementation: Unsupported value: "": supported values: "Intel", "MPICH", '
        '"OpenMPI"',
    ]
    assert str(errors[0]).startswith(
        'metadata.name: Invalid value: "": will not able to create pod and service with invalid '
        'DNS label "-worker-0": a DNS-1035 label must consist of'
    )


def test_invalid_fields() -> None:
    spec = valid_spec(
        runPolicy={
            "cleanPodPolicy": "unknown",
            "ttlSecondsAfterFinished": -1,
            "activeDeadlineSeconds": -1,
            "backoffLimit": -1,
            "managedBy": "invalid.com/controller",
        },
        sshAuthMountPath="/root/.ssh",
        mpiImplementation="Unknown",
        mpiReplicaSpecs={"Launcher": replica(1, "Never"), "Worker": replica(1000, "Never")},
    )
    errors = validate_mpijob_v2beta1(
        job("this-name-is-waaaaaaaay-too-long-for-a-worker-hostname", **spec)
    )
    assert fields(errors) == [
        ("Invalid", "metadata.name"),
        ("NotSupported", "spec.runPolicy.cleanPodPolicy"),
        ("Invalid", "spec.runPolicy.ttlSecondsAfterFinished"),
        ("Invalid", "spec.runPolicy.activeDeadlineSeconds"),
        ("Invalid", "spec.runPolicy.backoffLimit"),
        ("NotSupported", "spec.runPolicy.managedBy"),
        ("NotSupported", "spec.mpiImplementation"),
    ]
    messages = [e.message for e in errors]
    assert messages[0].endswith(
        '"this-name-is-waaaaaaaay-too-long-for-a-worker-hostname-worker-999": must be no more '
        "than 63 characters"
    )
    assert messages[1:5] == [
        'Unsupported value: "unknown": supported values: "All", "None", "Running"',
        "Invalid value: -1: must be greater than or equal to 0",
        "Invalid value: -1: must be greater than or equal to 0",
        "Invalid value: -1: must be greater than or equal to 0",
    ]
    assert messages[5] == (
        'Unsupported value: "invalid.com/controller": supported values: '
        '"kubeflow.org/mpi-operator", "kueue.x-k8s.io/multikueue"'
    )


def test_empty_replica_specs() -> None:
    errors = validate_mpijob_v2beta1(job(**valid_spec(mpiReplicaSpecs={})))
    assert [str(e) for e in errors] == [
        "spec.mpiReplicaSpecs[Launcher]: Required value: must have Launcher replica spec"
    ]


def test_missing_replica_spec_fields() -> None:
    errors = validate_mpijob_v2beta1(
        job(**valid_spec(mpiReplicaSpecs={"Launcher": {}, "Worker": {}}))
    )
    assert [str(e) for e in errors] == [
        "spec.mpiReplicaSpecs[Launcher].replicas: Required value: must define number of replicas",
        'spec.mpiReplicaSpecs[Launcher].restartPolicy: Unsupported value: "": supported values: '
        '"Never", "OnFailure"',
        "spec.mpiReplicaSpecs[Launcher].template.spec.containers: Required value: must define "
        "at least one container",
        "spec.mpiReplicaSpecs[Worker].replicas: Required value: must define number of replicas",
        'spec.mpiReplicaSpecs[Worker].restartPolicy: Unsupported value: "": supported values: '
        '"Never", "OnFailure"',
        "spec.mpiReplicaSpecs[Worker].template.spec.containers: Required value: must define "
        "at least one container",
    ]


def test_invalid_replica_fields() -> None:
    specs = {"Launcher": replica(2, "Always"), "Worker": replica(0, "Invalid")}
    errors = validate_mpijob_v2beta1(job(**valid_spec(mpiReplicaSpecs=specs)))
    assert [str(e) for e in errors] == [
        'spec.mpiReplicaSpecs[Launcher].restartPolicy: Unsupported value: "Always": supported '
        'values: "Never", "OnFailure"',
        "spec.mpiReplicaSpecs[Launcher].replicas: Invalid value: 2: must be 1",
        'spec.mpiReplicaSpecs[Worker].restartPolicy: Unsupported value: "Invalid": supported '
        'values: "Never", "OnFailure"',
        "spec.mpiReplicaSpecs[Worker].replicas: Invalid value: 0: must be greater than or "
        "equal to 1",
    ]


def test_invalid_name() -> None:
    errors = validate_mpijob_v2beta1(job("1-foo", **valid_spec()))
    assert fields(errors) == [("Invalid", "metadata.name")]


def test_negative_slots_and_wrong_types_never_raise() -> None:
    errors = validate_mpijob_v2beta1(job(**valid_spec(slotsPerWorker=-1)))
    assert [str(e) for e in errors] == [
        "spec.slotsPerWorker: Invalid value: -1: must be greater than or equal to 0"
    ]
    odd = job(
        **valid_spec(
            slotsPerWorker="two",
            runPolicy={"cleanPodPolicy": 3, "backoffLimit": True},
            sshAuthMountPath=7,
            mpiImplementation=["OpenMPI"],
            mpiReplicaSpecs={"Launcher": {"replicas": "1", "template": "x"}, "Worker": 5},
        )
    )
    assert fields(validate_mpijob_v2beta1(odd)) == [
        ("NotSupported", "spec.mpiReplicaSpecs[Launcher].restartPolicy"),
        ("Invalid", "spec.mpiReplicaSpecs[Launcher].template"),
        ("Required", "spec.mpiReplicaSpecs[Launcher].template.spec.containers"),
        ("Invalid", "spec.mpiReplicaSpecs[Launcher].replicas"),
        ("Invalid", "spec.mpiReplicaSpecs[Worker]"),
        ("Invalid", "spec.slotsPerWorker"),
        ("Invalid", "spec.runPolicy.cleanPodPolicy"),
        ("Invalid", "spec.runPolicy.backoffLimit"),
        ("Invalid", "spec.sshAuthMountPath"),
        ("Invalid", "spec.mpiImplementation"),
    ]
    assert fields(validate_mpijob_v2beta1({"metadata": {"name": "a"}, "spec": []})) == [
        ("Invalid", "spec")
    ]


# -- update rules ----------------------------------------------------------------------------------


def v2_job(**annotations: str) -> Obj:
    obj = default_mpijob_v2beta1(job(**valid_spec()))
    obj["metadata"] = {"name": "foo", "annotations": {ORIGIN_ANNOTATION: "v2beta1", **annotations}}
    return obj


def test_update_keeps_origin_and_managed_by() -> None:
    old = v2_job()
    assert validate_mpijob_v2beta1_update(old, copy.deepcopy(old)) == []
    new = copy.deepcopy(old)
    new["metadata"]["annotations"][ORIGIN_ANNOTATION] = "v1"
    new["spec"]["runPolicy"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    assert [str(e) for e in validate_mpijob_v2beta1_update(old, new)] == [
        f'{ORIGIN_FIELD}: Invalid value: "v1": field is immutable: an MPIJob keeps the API '
        "version it was written in (kubeflow.org/v2beta1)",
        'spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable',
    ]
    bad = copy.deepcopy(old)
    bad["spec"]["slotsPerWorker"] = -2
    assert fields(validate_mpijob_v2beta1_update(old, bad)) == [("Invalid", "spec.slotsPerWorker")]


# -- the origin annotation through conversion ------------------------------------------------------


def test_v2beta1_to_v1_stamps_v2beta1_and_back_keeps_it() -> None:
    original = job(**valid_spec())
    before = copy.deepcopy(original)
    stored = convert_mpijob(original, V1)
    assert original == before  # not modified
    assert stored["apiVersion"] == V1
    assert stored["spec"] == original["spec"]
    assert stored["metadata"]["annotations"] == {ORIGIN_ANNOTATION: "v2beta1"}
    assert written_as_v2beta1(stored)
    back = convert_mpijob(stored, V2)
    assert back["apiVersion"] == V2 and back["spec"] == original["spec"]
    assert back["metadata"]["annotations"] == {ORIGIN_ANNOTATION: "v2beta1"}
    assert convert_mpijob(back, V1) == stored


def test_v1_read_through_v2beta1_stays_v1() -> None:
    v1_job: Obj = {
        "apiVersion": V1,
        "kind": "MPIJob",
        "metadata": {"name": "old", "annotations": {"keep": "me"}},
        "spec": {"slotsPerWorker": 1, "mpiReplicaSpecs": {}},
        "status": {"conditions": [{"type": "Created", "status": "True"}]},
    }
    assert not written_as_v2beta1(v1_job)
    as_v2 = convert_mpijob(v1_job, V2)
    assert as_v2["metadata"]["annotations"] == {"keep": "me", ORIGIN_ANNOTATION: "v1"}
    assert as_v2["status"] == v1_job["status"]
    written_back = convert_mpijob(as_v2, V1)
    assert written_back["metadata"]["annotations"][ORIGIN_ANNOTATION] == "v1"
    assert not written_as_v2beta1(written_back)


def test_same_version_is_untouched_and_bad_requests_are_refused() -> None:
    v1_job: Obj = {"apiVersion": V1, "kind": "MPIJob", "metadata": {"name": "a"}}
    assert convert_mpijob(v1_job, V1) == v1_job
    with pytest.raises(ConversionError, match=r"cannot convert to kubeflow\.org/v3"):
        convert_mpijob(v1_job, "kubeflow.org/v3")
    with pytest.raises(ConversionError, match="only MPIJob"):
        convert_mpijob({**v1_job, "kind": "TFJob"}, V2)
    with pytest.raises(ConversionError, match="cannot convert from"):
        convert_mpijob({**v1_job, "apiVersion": "x/v9"}, V2)


# -- webhook dispatch ------------------------------------------------------------------------------


def decide(handler: Handler, request: dict[str, Any]) -> AdmissionResponse:
    response = handler(request)
    assert isinstance(response, AdmissionResponse)
    return response


def admission(
    operation: str, obj: Obj, old: Obj | None = None, version: str = "v1"
) -> dict[str, Any]:
    return {
        "uid": "u",
        "operation": operation,
        "object": obj,
        "oldObject": old,
        "requestKind": {"group": "kubeflow.org", "version": version, "kind": "MPIJob"},
    }


def as_stored(obj: Obj, origin: str | None) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = V1
    if origin is not None:
        out["metadata"]["annotations"] = {ORIGIN_ANNOTATION: origin}
    return out


def minimal_mpijob() -> Obj:
    container = {"name": "mpi", "image": "busybox"}
    return {
        "apiVersion": V2,
        "kind": "MPIJob",
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {
            "mpiReplicaSpecs": {"Launcher": {"template": {"spec": {"containers": [container]}}}}
        },
    }


def test_defaulter_gives_a_v2beta1_job_the_v2beta1_defaults() -> None:
    obj = as_stored(minimal_mpijob(), "v2beta1")
    response = decide(webhooks.job_defaulter(MPIJOB), admission("CREATE", obj, version="v2beta1"))
    patched = jsonpatch.apply_patch(obj, list(response.patch or []))
    assert patched == default_mpijob_v2beta1(obj)
    assert patched["spec"]["mpiReplicaSpecs"]["Launcher"]["restartPolicy"] == "OnFailure"
    assert "cleanPodPolicy" not in patched["spec"]  # v1's deprecated field is not set


def test_defaulter_gives_a_v1_job_the_v1_defaults() -> None:
    obj = as_stored(minimal_mpijob(), None)
    response = decide(webhooks.job_defaulter(MPIJOB), admission("CREATE", obj))
    patched = jsonpatch.apply_patch(obj, list(response.patch or []))
    assert patched["spec"]["cleanPodPolicy"] == "None"  # v1's defaulting
    assert "sshAuthMountPath" not in patched["spec"]
    assert patched["spec"]["mpiReplicaSpecs"]["Launcher"]["restartPolicy"] == "Never"
    # a v1 job read through v2beta1 ("v1" stamped) is still a v1 job
    stamped = as_stored(minimal_mpijob(), "v1")
    response = decide(
        webhooks.job_defaulter(MPIJOB), admission("UPDATE", stamped, stamped, "v2beta1")
    )
    assert (
        jsonpatch.apply_patch(stamped, list(response.patch or []))["spec"]["cleanPodPolicy"]
        == "None"
    )


def test_defaulter_stamps_a_v2beta1_request_an_api_server_did_not_convert() -> None:
    obj = as_stored(minimal_mpijob(), None)  # relabelled, no annotation
    response = decide(webhooks.job_defaulter(MPIJOB), admission("CREATE", obj, version="v2beta1"))
    patched = jsonpatch.apply_patch(obj, list(response.patch or []))
    assert patched["metadata"]["annotations"] == {ORIGIN_ANNOTATION: "v2beta1"}
    assert patched["spec"]["sshAuthMountPath"] == "/root/.ssh"


def test_validator_applies_the_rules_of_the_written_version() -> None:
    # Worker replicas 0 and restartPolicy ExitCode: fine for v1, refused by v2beta1
    spec_extra = {
        "Worker": {
            "replicas": 0,
            "restartPolicy": "ExitCode",
            "template": {"spec": {"containers": [{"name": "mpi", "image": "b"}]}},
        }
    }
    v2 = default_mpijob_v2beta1(as_stored(minimal_mpijob(), "v2beta1"))
    v2["spec"]["mpiReplicaSpecs"].update(spec_extra)
    response = decide(webhooks.job_validator(MPIJOB), admission("CREATE", v2, version="v2beta1"))
    assert not response.allowed and response.status is not None
    assert response.status["code"] == 422
    causes = {c["field"] for c in response.status["details"]["causes"]}
    assert causes == {
        "spec.mpiReplicaSpecs[Worker].restartPolicy",
        "spec.mpiReplicaSpecs[Worker].replicas",
    }
    assert response.status["message"].startswith('MPIJob.kubeflow.org "pi" is invalid: [')

    v1 = default_job(MPIJOB, as_stored(minimal_mpijob(), None))
    v1["spec"]["mpiReplicaSpecs"].update(spec_extra)
    assert decide(webhooks.job_validator(MPIJOB), admission("CREATE", v1)).allowed
    # the other way: the v1 rules refuse a container without an image, v2beta1's do not
    v1_bad = copy.deepcopy(v1)
    del v1_bad["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["image"]
    assert not decide(webhooks.job_validator(MPIJOB), admission("CREATE", v1_bad)).allowed
    v2_no_image = default_mpijob_v2beta1(as_stored(minimal_mpijob(), "v2beta1"))
    del v2_no_image["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert decide(webhooks.job_validator(MPIJOB), admission("CREATE", v2_no_image)).allowed


def test_validator_keeps_the_origin_annotation() -> None:
    v2 = default_mpijob_v2beta1(as_stored(minimal_mpijob(), "v2beta1"))
    flipped = copy.deepcopy(v2)
    del flipped["metadata"]["annotations"]
    response = decide(webhooks.job_validator(MPIJOB), admission("UPDATE", flipped, v2))
    assert not response.allowed and response.status is not None
    assert response.status["code"] == 422
    assert response.status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: null: field is immutable: an MPIJob keeps the API "
            "version it was written in (kubeflow.org/v2beta1)",
            "field": ORIGIN_FIELD,
        }
    ]
    v1 = default_job(MPIJOB, as_stored(minimal_mpijob(), None))
    to_v2 = copy.deepcopy(v1)
    to_v2["metadata"]["annotations"] = {ORIGIN_ANNOTATION: "v2beta1"}
    response = decide(webhooks.job_validator(MPIJOB), admission("UPDATE", to_v2, v1))
    assert not response.allowed
    # absent and "v1" are the same origin: a v1 job written back through v2beta1 passes
    stamped = copy.deepcopy(v1)
    stamped["metadata"]["annotations"] = {ORIGIN_ANNOTATION: "v1"}
    assert decide(webhooks.job_validator(MPIJOB), admission("UPDATE", stamped, v1)).allowed
    # an unknown origin is refused on create
    odd = copy.deepcopy(v1)
    odd["metadata"]["annotations"] = {ORIGIN_ANNOTATION: "v3"}
    response = decide(webhooks.job_validator(MPIJOB), admission("CREATE", odd))
    assert not response.allowed and response.status is not None
    assert response.status["details"]["causes"][0]["field"] == ORIGIN_FIELD


def test_register_job_webhooks_serves_conversion_with_mpijob_only() -> None:
    server = WebhookServer()
    webhooks.register_job_webhooks(server, [MPIJOB])
    assert CONVERSION_PATH in server.paths
    other = WebhookServer()
    webhooks.register_job_webhooks(other, [PYTORCHJOB])
    assert CONVERSION_PATH not in other.paths


# -- the CRD ---------------------------------------------------------------------------------------


def test_mpijob_crd_serves_v1_and_v2beta1_with_webhook_conversion() -> None:
    crd = crds.crd(MPIJOB)
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert [(v["name"], v["served"], v["storage"]) for v in crd["spec"]["versions"]] == [
        ("v1", True, True),
        ("v2beta1", True, False),
    ]
    assert versions["v2beta1"]["subresources"] == {"status": {}}
    assert "additionalPrinterColumns" not in versions["v2beta1"]
    v1_spec = versions["v1"]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for name in (
        "runLauncherAsWorker",
        "sshAuthMountPath",
        "launcherCreationPolicy",
        "mpiImplementation",
    ):
        assert name in v1_spec and "default" not in v1_spec[name]
    v2_spec = versions["v2beta1"]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert v2_spec["required"] == ["mpiReplicaSpecs"]
    assert v2_spec["properties"]["slotsPerWorker"]["default"] == 1
    assert v2_spec["properties"]["mpiImplementation"]["enum"] == ["OpenMPI", "Intel", "MPICH"]
    assert crd["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {
                "service": {
                    "namespace": "kubeflow",
                    "name": "kubetrain-webhook-service",
                    "path": "/convert",
                    "port": 443,
                }
            },
            "conversionReviewVersions": ["v1"],
        },
    }
    by_url = crds.crd(MPIJOB, url="https://127.0.0.1:9443/", ca_bundle="Q0E=")
    assert by_url["spec"]["conversion"]["webhook"]["clientConfig"] == {
        "url": "https://127.0.0.1:9443/convert",
        "caBundle": "Q0E=",
    }
    service = webhooks.WebhookService(namespace="ns", name="svc", port=8443)
    client = crds.crd(MPIJOB, service=service)["spec"]["conversion"]["webhook"]["clientConfig"]
    assert client["service"] == {"namespace": "ns", "name": "svc", "path": "/convert", "port": 8443}
    assert "conversion" not in crds.crd(PYTORCHJOB)["spec"]
    assert len(crds.crd(PYTORCHJOB)["spec"]["versions"]) == 1
