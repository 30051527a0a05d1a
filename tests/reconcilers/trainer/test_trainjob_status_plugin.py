"""The TrainJobStatus plugin (``reconcilers/trainer/plugins/trainjob_status.py``) through
``build_objects``: what the trainer job's containers get, field by field, and the CA ConfigMap,
as Trainer v2.3.0's ``trainjobstatus`` plugin builds them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubetrain.base.jsoncopy import json_copy
from kubetrain.reconcilers.trainer.objects import TRAINJOB_NAME_LABEL, build_objects
from kubetrain.reconcilers.trainer.plugins.trainjob_status import (
    StatusServerSettings,
    StatusServerSource,
    status_path,
    token_audience,
)
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SETTINGS = StatusServerSettings(
    service_name="kubetrain-webhook-service", namespace="kubeflow", port=443, ca_bundle=CA
)
URL = (
    "https://kubetrain-webhook-service.kubeflow.svc:443"
    "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs/mnist/status"
)


def runtime_spec(name: str) -> dict[str, Any]:
    found = next(r for r in builtin_runtimes() if r["metadata"]["name"] == name)
    spec: dict[str, Any] = found["spec"]
    return spec


def trainjob(runtime: str = "torch-distributed") -> dict[str, Any]:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "mnist", "namespace": "team-a", "uid": "uid-1"},
        "spec": {
            "runtimeRef": {"name": runtime},
            "trainer": {"numNodes": 2, "env": [{"name": "A", "value": "1"}]},
        },
    }


def pod_spec(jobset: dict[str, Any], job: str) -> dict[str, Any]:
    rjob = next(r for r in jobset["spec"]["replicatedJobs"] if r["name"] == job)
    spec: dict[str, Any] = rjob["template"]["spec"]["template"]["spec"]
    return spec


def test_the_audience_and_path_are_trainers() -> None:
    assert status_path("ns", "tj") == (
        "/apis/trainer.kubeflow.org/v1alpha1/namespaces/ns/trainjobs/tj/status"
    )
    assert token_audience("ns", "tj") == (
        "trainer.kubeflow.org/v1alpha1/namespaces/ns/trainjobs/tj/status"
    )
    assert SETTINGS.url("team-a", "mnist") == URL


def test_every_trainer_container_gets_the_env_and_the_mount() -> None:
    built = build_objects(trainjob(), runtime_spec("torch-distributed"), status_server=SETTINGS)
    spec = pod_spec(built.jobset, "node")
    for container in spec["containers"]:
        env = {e["name"]: e for e in container["env"]}
        assert env["KUBEFLOW_TRAINER_SERVER_URL"] == {
            "name": "KUBEFLOW_TRAINER_SERVER_URL",
            "value": URL,
        }
        assert env["KUBEFLOW_TRAINER_SERVER_CA_CERT"] == {
            "name": "KUBEFLOW_TRAINER_SERVER_CA_CERT",
            "value": "/var/run/secrets/kubeflow/trainer/ca.crt",
        }
        assert env["KUBEFLOW_TRAINER_SERVER_TOKEN"] == {
            "name": "KUBEFLOW_TRAINER_SERVER_TOKEN",
            "value": "/var/run/secrets/kubeflow/trainer/token",
        }
        # appended after what the build put there (the TrainJob's env, torch's PET_*)
        names = [e["name"] for e in container["env"]]
        assert names[-3:] == [
            "KUBEFLOW_TRAINER_SERVER_URL",
            "KUBEFLOW_TRAINER_SERVER_CA_CERT",
            "KUBEFLOW_TRAINER_SERVER_TOKEN",
        ]
        assert "A" in names and "PET_NNODES" in names
        assert container["volumeMounts"] == [
            {
                "name": "kubeflow-trainer-token",
                "mountPath": "/var/run/secrets/kubeflow/trainer",
                "readOnly": True,
            }
        ]


def test_the_projected_volume_holds_the_token_and_the_ca() -> None:
    built = build_objects(trainjob(), runtime_spec("torch-distributed"), status_server=SETTINGS)
    volumes = pod_spec(built.jobset, "node")["volumes"]
    assert volumes == [
        {
            "name": "kubeflow-trainer-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": (
                                "trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs/"
                                "mnist/status"
                            ),
                            "expirationSeconds": 3600,
                            "path": "token",
                        }
                    },
                    {
                        "configMap": {
                            "name": "mnist-tls-config",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                ]
            },
        }
    ]


def test_the_ca_config_map_is_applied_beside_the_jobset() -> None:
    built = build_objects(trainjob(), runtime_spec("torch-distributed"), status_server=SETTINGS)
    (config_map,) = [o for o in built.applied if o["kind"] == "ConfigMap"]
    assert config_map == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "mnist-tls-config",
            "namespace": "team-a",
            "labels": {TRAINJOB_NAME_LABEL: "mnist"},
            "ownerReferences": [
                {
                    "apiVersion": "trainer.kubeflow.org/v1alpha1",
                    "kind": "TrainJob",
                    "name": "mnist",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {"ca.crt": CA},
    }
    assert built.created == []


def test_only_the_trainer_job_is_injected() -> None:
    job = trainjob("torchtune-llama3.2-1b")
    job["spec"]["trainer"] = {"numNodes": 1}
    built = build_objects(job, runtime_spec("torchtune-llama3.2-1b"), status_server=SETTINGS)
    for rjob in built.jobset["spec"]["replicatedJobs"]:
        spec = rjob["template"]["spec"]["template"]["spec"]
        names = {e["name"] for c in spec["containers"] for e in c.get("env") or []}
        volumes = {v["name"] for v in spec.get("volumes") or []}
        injected = rjob["name"] == "node"
        assert ("KUBEFLOW_TRAINER_SERVER_URL" in names) == injected, rjob["name"]
        assert ("kubeflow-trainer-token" in volumes) == injected, rjob["name"]
        if injected:  # the runtime's own mounts stay, ours is added
            mounts = [m["name"] for m in spec["containers"][0]["volumeMounts"]]
            assert mounts[-1] == "kubeflow-trainer-token" and len(mounts) > 1


def test_an_existing_entry_of_the_same_name_is_replaced_not_doubled() -> None:
    spec = json_copy(runtime_spec("torch-distributed"))
    rjob = spec["template"]["spec"]["replicatedJobs"][0]
    pod = rjob["template"]["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [{"name": "KUBEFLOW_TRAINER_SERVER_URL", "value": "old"}]
    pod["volumes"] = [{"name": "kubeflow-trainer-token", "emptyDir": {}}]
    built = build_objects(trainjob(), spec, status_server=SETTINGS)
    out = pod_spec(built.jobset, "node")
    urls = [e for e in out["containers"][0]["env"] if e["name"] == "KUBEFLOW_TRAINER_SERVER_URL"]
    assert urls == [{"name": "KUBEFLOW_TRAINER_SERVER_URL", "value": URL}]
    assert [v["name"] for v in out["volumes"]] == ["kubeflow-trainer-token"]
    assert "projected" in out["volumes"][0]


def test_without_settings_nothing_is_injected() -> None:
    built = build_objects(trainjob(), runtime_spec("torch-distributed"))
    text = repr(built.jobset)
    assert "KUBEFLOW_TRAINER" not in text and "kubeflow-trainer-token" not in text
    assert not [o for o in built.applied if o["kind"] == "ConfigMap"]


def test_the_arguments_are_not_changed() -> None:
    job, spec = trainjob(), runtime_spec("torch-distributed")
    before = (json_copy(job), json_copy(spec))
    build_objects(job, spec, status_server=SETTINGS)
    assert (job, spec) == before


def test_the_source_reads_the_ca_at_each_build() -> None:
    bundles = iter(["first", "second"])

    async def read() -> str:
        return next(bundles)

    source = StatusServerSource(service_name="svc", namespace="ops", port=8443, ca_bundle=read)
    first = asyncio.run(source.settings())
    second = asyncio.run(source.settings())
    assert (first.ca_bundle, second.ca_bundle) == ("first", "second")
    assert first.url("a", "b").startswith("https://svc.ops.svc:8443/apis/")


@pytest.mark.parametrize("runtime", ["jax-distributed", "xgboost-distributed"])
def test_other_frameworks_get_it_too(runtime: str) -> None:
    built = build_objects(trainjob(runtime), runtime_spec(runtime), status_server=SETTINGS)
    names = {e["name"] for e in pod_spec(built.jobset, "node")["containers"][0]["env"]}
    assert {"KUBEFLOW_TRAINER_SERVER_URL", "KUBEFLOW_TRAINER_SERVER_TOKEN"} <= names
