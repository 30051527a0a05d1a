"""Webhook rules per kind (reference 4) and kubetrain's admission rules, with kube-style messages."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from jobkit import make_job

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.api.validation import (
    FieldError,
    aggregate_message,
    validate,
    validate_update,
    warnings,
)

DNS_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def msgs(kind: str, job: dict) -> list[str]:
    return [str(e) for e in validate(BY_KIND[kind], job)]


@pytest.mark.parametrize(
    "kind", ["TFJob", "PyTorchJob", "XGBoostJob", "PaddleJob", "JAXJob", "MPIJob"]
)
def test_examples_shape_is_valid(kind: str) -> None:
    replicas = {"MPIJob": {"Launcher": 1, "Worker": 2}, "JAXJob": {"Worker": 2}}.get(
        kind, {"Master": 1, "Worker": 2}
    )
    assert msgs(kind, make_job(kind, replicas)) == []


def test_name_rule() -> None:
    assert msgs("JAXJob", make_job("JAXJob", {"Worker": 1}, name="Bad_Name")) == [
        f'metadata.name: Invalid value: "Bad_Name": should match: {DNS_MSG}'
    ]
    long = "a" * 64
    assert msgs("JAXJob", make_job("JAXJob", {"Worker": 1}, name=long)) == [
        f'metadata.name: Invalid value: "{long}": should match: must be no more than 63 characters'
    ]


@pytest.mark.parametrize(
    "kind", ["TFJob", "PyTorchJob", "XGBoostJob", "PaddleJob", "JAXJob", "MPIJob"]
)
def test_managed_by_not_supported_every_kind(kind: str) -> None:
    job = make_job(kind, {}, run_policy={"managedBy": "me/else"})
    assert (
        'spec.runPolicy.managedBy: Unsupported value: "me/else": supported values: '
        '"kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue"'
    ) in msgs(kind, job)


@pytest.mark.parametrize("kind", ["TFJob", "PyTorchJob", "JAXJob"])
def test_managed_by_immutable_on_update(kind: str) -> None:
    old = make_job(kind, {"Worker": 1})
    new = make_job(kind, {"Worker": 1}, run_policy={"managedBy": "kueue.x-k8s.io/multikueue"})
    errs = [str(e) for e in validate_update(BY_KIND[kind], old, new)]
    assert errs == [
        'spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable'
    ]
    assert validate_update(BY_KIND[kind], new, new) == []


def test_replica_map_required_and_container_rules() -> None:
    job = make_job("PyTorchJob", {})
    del job["spec"]["pytorchReplicaSpecs"]
    assert msgs("PyTorchJob", job) == ["spec.pytorchReplicaSpecs: Required value: must be required"]
    job = make_job("PyTorchJob", {"Worker": 1, "Chief": 1})
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"] = [
        {"name": "other"}
    ]
    job["spec"]["pytorchReplicaSpecs"]["Chief"]["template"]["spec"]["containers"] = []
    assert msgs("PyTorchJob", job) == [
        "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].image: Required value: must be required",
        "spec.pytorchReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name pytorch",
        'spec.pytorchReplicaSpecs[Chief]: Unsupported value: "Chief": supported values: "Master", "Worker"',
        "spec.pytorchReplicaSpecs[Chief].template.spec.containers: Required value: must be specified",
        "spec.pytorchReplicaSpecs[Chief].template.spec.containers: Required value: must have at least one container with name pytorch",
    ]


def test_tf_any_key_but_one_chief_or_master() -> None:
    assert msgs("TFJob", make_job("TFJob", {"Anything": 1, "Chief": 1})) == []
    assert msgs("TFJob", make_job("TFJob", {"Master": 1, "Chief": 1})) == [
        "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role"
    ]


@pytest.mark.parametrize("kind", ["PyTorchJob", "XGBoostJob"])
@pytest.mark.parametrize("replicas", [None, 0, 2])
def test_master_replicas_must_be_one(kind: str, replicas: int | None) -> None:
    field = BY_KIND[kind].replica_field
    assert msgs(kind, make_job(kind, {"Master": replicas, "Worker": 1})) == [
        f"spec.{field}[Master].replicas: Forbidden: must be 1"
    ]


def test_pytorch_worker_elastic_rules_and_warning() -> None:
    assert msgs("PyTorchJob", make_job("PyTorchJob", {"Worker": 0})) == [
        "spec.pytorchReplicaSpecs[Worker].replicas: Forbidden: must be at least 1"
    ]
    job = make_job("PyTorchJob", {"Master": 1}, elasticPolicy={"nProcPerNode": 2}, nprocPerNode="2")
    assert msgs("PyTorchJob", job) == [
        "spec.pytorchReplicaSpecs[Worker]: Required value: must be configured if elastic policy is used",
        "spec.elasticPolicy.nProcPerNode: Forbidden: must not be used with spec.nprocPerNode",
    ]
    assert warnings(BY_KIND["PyTorchJob"], job) == [
        "spec.elasticPolicy.nProcPerNode is deprecated, use spec.nprocPerNode instead"
    ]


def test_xgboost_master_required_jax_types() -> None:
    assert msgs("XGBoostJob", make_job("XGBoostJob", {"Worker": 1})) == [
        "spec.xgbReplicaSpecs[Master]: Required value: must be present"
    ]
    assert msgs("JAXJob", make_job("JAXJob", {"Master": 1})) == [
        'spec.jaxReplicaSpecs[Master]: Unsupported value: "Master": supported values: "Worker"'
    ]


def test_mpi_rules() -> None:
    job = make_job("MPIJob", {"Worker": 1, "Launcher": 2})
    job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"] = [{"image": "x"}]
    assert msgs("MPIJob", job) == [
        "spec.mpiReplicaSpecs[Worker].template.spec.containers[0].name: Required value: must be required",
        "spec.mpiReplicaSpecs[Launcher].replicas: Forbidden: must be 1",
    ]
    assert msgs("MPIJob", make_job("MPIJob", {"Worker": 1})) == [
        "spec.mpiReplicaSpecs[Launcher]: Required value: must be present"
    ]


def test_aggregate_message() -> None:
    a = FieldError("Required", "a", detail="x")
    b = FieldError("Forbidden", "b", detail="y")
    assert aggregate_message([a]) == "a: Required value: x"
    assert aggregate_message([a, b]) == "[a: Required value: x, b: Forbidden: y]"


# --- Admission rules beyond the reference's webhooks (module docstring of validation.py). ----

ALL_KIND_NAMES = ["TFJob", "PyTorchJob", "XGBoostJob", "PaddleJob", "JAXJob", "MPIJob"]
RFC1123_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
RESTART_VALUES = 'supported values: "Always", "OnFailure", "Never", "ExitCode"'
CLEAN_VALUES = 'supported values: "None", "Running", "All"'


def valid_job(kind: str, *, workers: int = 2, name: str = "j") -> dict:
    """The smallest valid job of ``kind`` with a Worker spec (plus Master/Launcher if needed)."""
    lead = {"PyTorchJob": "Master", "XGBoostJob": "Master", "MPIJob": "Launcher"}.get(kind)
    replicas: dict[str, int | None] = {lead: 1} if lead else {}
    replicas["Worker"] = workers
    return make_job(kind, replicas, name=name)


def role(kind: str, rtype: str = "Worker") -> str:
    return f"spec.{BY_KIND[kind].replica_field}[{rtype}]"


def worker(job: dict) -> dict:
    return job["spec"][BY_KIND[job["kind"]].replica_field]["Worker"]


def pod_spec(job: dict, rtype: str = "Worker") -> dict:
    return job["spec"][BY_KIND[job["kind"]].replica_field][rtype]["template"]["spec"]


def errors_at(kind: str, job: dict, field: str) -> list[str]:
    return [str(e) for e in validate(BY_KIND[kind], job) if e.field == field]


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_valid_jobs_stay_valid_after_defaulting(kind: str) -> None:
    job = valid_job(kind)
    assert msgs(kind, job) == []
    assert msgs(kind, default_job(BY_KIND[kind], job)) == []


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
@pytest.mark.parametrize(
    "replicas, expected",
    [
        (-1, "Invalid value: -1: must be greater than or equal to 0"),
        ("2", 'Invalid value: "string": must be of type integer'),
        (True, 'Invalid value: "boolean": must be of type integer'),
        (1.5, 'Invalid value: "number": must be of type integer'),
    ],
)
def test_replicas_must_be_a_non_negative_integer(
    kind: str, replicas: object, expected: str
) -> None:
    job = valid_job(kind)
    worker(job)["replicas"] = replicas
    path = f"{role(kind)}.replicas"
    assert f"{path}: {expected}" in errors_at(kind, job, path)


@pytest.mark.parametrize("kind", ["TFJob", "XGBoostJob", "PaddleJob", "JAXJob", "MPIJob"])
def test_zero_replicas_are_valid(kind: str) -> None:
    assert msgs(kind, valid_job(kind, workers=0)) == []


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never", "ExitCode", "", None])
def test_restart_policy_supported_values(kind: str, policy: str | None) -> None:
    job = valid_job(kind)
    worker(job)["restartPolicy"] = policy
    assert msgs(kind, job) == []


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_restart_policy_not_supported(kind: str) -> None:
    job = valid_job(kind)
    worker(job)["restartPolicy"] = "Sometimes"
    assert msgs(kind, job) == [
        f'{role(kind)}.restartPolicy: Unsupported value: "Sometimes": {RESTART_VALUES}'
    ]
    worker(job)["restartPolicy"] = 3
    assert msgs(kind, job) == [
        f'{role(kind)}.restartPolicy: Invalid value: "integer": must be of type string'
    ]


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_container_names_are_dns1123_labels(kind: str) -> None:
    job = valid_job(kind)
    pod = pod_spec(job)
    pod["containers"].append({"name": "Side_Car", "image": "i"})
    pod["initContainers"] = [{"name": "x" * 64, "image": "i"}, {"image": "i"}]
    containers = f"{role(kind)}.template.spec"
    assert msgs(kind, job) == [
        f'{containers}.containers[1].name: Invalid value: "Side_Car": {RFC1123_MSG}',
        f'{containers}.initContainers[0].name: Invalid value: "{"x" * 64}": '
        "must be no more than 63 characters",
        f"{containers}.initContainers[1].name: Required value: must be required",
    ]


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_container_names_unique_across_containers_and_init_containers(kind: str) -> None:
    job = valid_job(kind)
    pod = pod_spec(job)
    default = BY_KIND[kind].default_container
    pod["containers"] += [{"name": "side", "image": "i"}, {"name": "side", "image": "i"}]
    pod["initContainers"] = [{"name": default, "image": "i"}, {"name": "setup"}]
    path = f"{role(kind)}.template.spec"
    assert msgs(kind, job) == [
        f'{path}.containers[2].name: Duplicate value: "side"',
        f'{path}.initContainers[0].name: Duplicate value: "{default}"',
        f"{path}.initContainers[1].image: Required value: must be required",
    ]


def test_container_names_the_operator_adds_are_reserved() -> None:
    from kubetrain.reconcilers.kinds import mpi, pytorch

    assert pytorch.INIT_CONTAINER_NAME == "init-pytorch"
    assert mpi.KUBECTL_DELIVERY == "kubectl-delivery"
    job = valid_job("PyTorchJob")
    pod_spec(job)["initContainers"] = [{"name": "init-pytorch", "image": "i"}]
    assert msgs("PyTorchJob", job) == [
        "spec.pytorchReplicaSpecs[Worker].template.spec.initContainers[0].name: Invalid value: "
        '"init-pytorch": is reserved: the operator adds an init container of this name to '
        "Worker pods of a job with a Master"
    ]
    del job["spec"]["pytorchReplicaSpecs"]["Master"]  # no Master: no init container added
    assert msgs("PyTorchJob", job) == []
    job = valid_job("MPIJob")
    pod_spec(job, "Launcher")["containers"].append({"name": "kubectl-delivery", "image": "i"})
    assert msgs("MPIJob", job) == [
        "spec.mpiReplicaSpecs[Launcher].template.spec.containers[1].name: Invalid value: "
        '"kubectl-delivery": is reserved: the operator adds an init container of this name to '
        "Launcher pods"
    ]


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
@pytest.mark.parametrize(
    "port_name, problem",
    [
        ("a" * 16, "must be no more than 15 characters"),
        ("Port_A", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
        ("1234", "must contain at least one letter (a-z)"),
        ("a--b", "must not contain consecutive hyphens"),
        ("-ab", "must not begin or end with a hyphen"),
    ],
)
def test_port_names_are_iana_svc_names(kind: str, port_name: str, problem: str) -> None:
    job = valid_job(kind)
    pod_spec(job)["containers"][0]["ports"] = [{"name": port_name, "containerPort": 80}]
    path = f"{role(kind)}.template.spec.containers[0].ports[0].name"
    assert msgs(kind, job) == [f'{path}: Invalid value: "{port_name}": {problem}']


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_container_port_required_in_range_and_port_names_unique(kind: str) -> None:
    job = valid_job(kind)
    pod_spec(job)["containers"].append(
        {
            "name": "side",
            "image": "i",
            "ports": [
                {"name": "http"},
                {"name": "http", "containerPort": 0},
                {"name": "metrics", "containerPort": 65536},
                {"containerPort": "80"},
                {"containerPort": 65535},
            ],
        }
    )
    ports = f"{role(kind)}.template.spec.containers[1].ports"
    assert msgs(kind, job) == [
        f"{ports}[0].containerPort: Required value",
        f'{ports}[1].name: Duplicate value: "http"',
        f"{ports}[1].containerPort: Required value",
        f"{ports}[2].containerPort: Invalid value: 65536: must be between 1 and 65535, inclusive",
        f'{ports}[3].containerPort: Invalid value: "string": must be of type integer',
    ]


@pytest.mark.parametrize("kind", ["TFJob", "PyTorchJob", "XGBoostJob", "PaddleJob", "JAXJob"])
def test_ports_of_the_default_container_must_suit_the_headless_services(kind: str) -> None:
    """Every port of the default container becomes a service port: with several ports each needs
    a name, and numbers must differ (an unnamed user port + the defaulted one is the classic)."""
    k = BY_KIND[kind]
    job = valid_job(kind)
    pod_spec(job)["containers"][0]["ports"] = [{"containerPort": 8080}]
    assert msgs(kind, job) == []  # one port: a service may leave it unnamed
    defaulted = default_job(k, job)
    ports = f"{role(kind)}.template.spec.containers[0].ports"
    assert errors_at(kind, defaulted, f"{ports}[0].name") == [
        f"{ports}[0].name: Required value: must be set: the job's headless services expose every "
        f"port of container {k.default_container}, and a service with more than one port needs "
        "each one named"
    ]
    pod_spec(job)["containers"][0]["ports"] = [{"name": "http", "containerPort": k.default_port}]
    assert errors_at(kind, default_job(k, job), f"{ports}[1].containerPort") == [
        f"{ports}[1].containerPort: Duplicate value: {k.default_port}: the job's headless "
        f"services expose every port of container {k.default_container}, and a service cannot "
        "expose a port number twice"
    ]


def test_ports_of_other_containers_and_of_mpi_need_no_service_rules() -> None:
    job = valid_job("MPIJob")
    pod_spec(job)["containers"][0]["ports"] = [{"containerPort": 80}, {"containerPort": 80}]
    assert msgs("MPIJob", job) == []
    job = valid_job("JAXJob")
    pod_spec(job)["containers"].append(
        {"name": "side", "image": "i", "ports": [{"containerPort": 80}, {"containerPort": 80}]}
    )
    assert msgs("JAXJob", job) == []


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_job_name_leaves_room_for_pod_and_service_names(kind: str) -> None:
    # The longest name is ``<job>-worker-99``: 10 characters after the job name.
    assert msgs(kind, valid_job(kind, workers=100, name="a" * 53)) == []
    long_name = "a" * 54
    named = "pod names" if kind == "MPIJob" else "pod and service names"
    assert msgs(kind, valid_job(kind, workers=100, name=long_name)) == [
        f'metadata.name: Invalid value: "{long_name}": must be no more than 53 characters for '
        f"this job: its {named} (<job>-<replica type>-<index>) must be DNS-1035 labels of at "
        f'most 63 characters, and the longest, "{long_name}-worker-99", has 64'
    ]


def test_job_name_limit_counts_unset_replicas_as_one_and_zero_as_none() -> None:
    assert msgs("JAXJob", make_job("JAXJob", {"Worker": None}, name="a" * 54)) == []
    job = make_job("JAXJob", {"Worker": None}, name="a" * 55)  # <job>-worker-0: 64 characters
    assert [e.field for e in validate(BY_KIND["JAXJob"], job)] == ["metadata.name"]
    # Worker 0 has no pods: the longest is <job>-evaluator-0, 12 characters after the name.
    assert msgs("TFJob", make_job("TFJob", {"Worker": 0, "Evaluator": 1}, name="a" * 51)) == []
    job = make_job("TFJob", {"Worker": 0, "Evaluator": 1}, name="a" * 52)
    assert [e.field for e in validate(BY_KIND["TFJob"], job)] == ["metadata.name"]


def test_mpi_launcher_pod_is_named_without_index() -> None:
    assert msgs("MPIJob", valid_job("MPIJob", workers=0, name="a" * 54)) == []
    long_name = "a" * 55
    assert msgs("MPIJob", valid_job("MPIJob", workers=0, name=long_name)) == [
        f'metadata.name: Invalid value: "{long_name}": must be no more than 54 characters for '
        "this job: its pod names (<job>-<replica type>-<index>) must be DNS-1035 labels of at "
        f'most 63 characters, and the longest, "{long_name}-launcher", has 64'
    ]


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_empty_name_is_not_checked_generate_name(kind: str) -> None:
    job = valid_job(kind, workers=10**6, name="")
    assert msgs(kind, job) == []
    del job["metadata"]["name"]
    job["metadata"]["generateName"] = "x" * 80
    assert msgs(kind, job) == []


def test_tf_replica_types_must_name_pods() -> None:
    job = make_job("TFJob", {"Worker": 1, "My_Type": 1, "worker": 1, "x" * 62: 1})
    assert msgs("TFJob", job) == [
        f'spec.tfReplicaSpecs[{"x" * 62}]: Invalid value: "{"x" * 62}": is too long: its pod '
        f'names "<job>-{"x" * 62}-0" must be no more than 63 characters',
        f'spec.tfReplicaSpecs[My_Type]: Invalid value: "my_type": {RFC1123_MSG}',
        'spec.tfReplicaSpecs[worker]: Duplicate value: "worker": same type as Worker: replica '
        "types are case-insensitive",
    ]


@pytest.mark.parametrize("kind", ["PyTorchJob", "PaddleJob"])
def test_elastic_policy_bounds(kind: str) -> None:
    ok = valid_job(kind)
    ok["spec"]["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": 3, "maxRestarts": 0}
    assert msgs(kind, ok) == []
    job = valid_job(kind)
    job["spec"]["elasticPolicy"] = {"minReplicas": 0, "maxReplicas": 0, "maxRestarts": -1}
    assert msgs(kind, job) == [
        "spec.elasticPolicy.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.elasticPolicy.maxReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.elasticPolicy.maxRestarts: Invalid value: -1: must be greater than or equal to 0",
    ]
    job["spec"]["elasticPolicy"] = {"minReplicas": 4, "maxReplicas": 2}
    assert msgs(kind, job) == [
        "spec.elasticPolicy.minReplicas: Invalid value: 4: must be less than or equal to "
        "spec.elasticPolicy.maxReplicas (2)"
    ]
    job["spec"]["elasticPolicy"] = "elastic"
    assert msgs(kind, job) == [
        'spec.elasticPolicy: Invalid value: "string": must be of type object'
    ]


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_run_policy_values(kind: str) -> None:
    ok = valid_job(kind)
    ok["spec"]["runPolicy"] = {
        "cleanPodPolicy": "Running",
        "backoffLimit": 0,
        "activeDeadlineSeconds": 0,
        "ttlSecondsAfterFinished": 0,
        "suspend": True,
        "schedulingPolicy": {"minAvailable": 0, "queue": "q"},
    }
    assert msgs(kind, ok) == []
    job = valid_job(kind)
    job["spec"]["runPolicy"] = {
        "cleanPodPolicy": "Sometimes",
        "backoffLimit": -1,
        "activeDeadlineSeconds": -2,
        "ttlSecondsAfterFinished": "60",
        "suspend": "false",
        "schedulingPolicy": {"minAvailable": -1, "queue": 7},
    }
    assert msgs(kind, job) == [
        f'spec.runPolicy.cleanPodPolicy: Unsupported value: "Sometimes": {CLEAN_VALUES}',
        "spec.runPolicy.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
        "spec.runPolicy.activeDeadlineSeconds: Invalid value: -2: must be greater than or equal "
        "to 0",
        'spec.runPolicy.ttlSecondsAfterFinished: Invalid value: "string": must be of type integer',
        'spec.runPolicy.suspend: Invalid value: "string": must be of type boolean',
        "spec.runPolicy.schedulingPolicy.minAvailable: Invalid value: -1: must be greater than "
        "or equal to 0",
        'spec.runPolicy.schedulingPolicy.queue: Invalid value: "integer": must be of type string',
    ]


def test_mpi_deprecated_clean_pod_policy_and_slots_per_worker() -> None:
    ok = valid_job("MPIJob")
    ok["spec"].update(cleanPodPolicy="All", slotsPerWorker=0)
    assert msgs("MPIJob", ok) == []
    job = valid_job("MPIJob")
    job["spec"].update(cleanPodPolicy="Finished", slotsPerWorker=-1)
    assert msgs("MPIJob", job) == [
        f'spec.cleanPodPolicy: Unsupported value: "Finished": {CLEAN_VALUES}',
        "spec.slotsPerWorker: Invalid value: -1: must be greater than or equal to 0",
    ]


Mutation = Callable[[dict], None]
MAP = "<the replica map>"


def _set_map(value: object) -> Mutation:
    def mutate(job: dict) -> None:
        job["spec"][BY_KIND[job["kind"]].replica_field] = value

    return mutate


def _set(path: list[str | int], value: object) -> Mutation:
    """A mutation putting ``value`` at ``path`` below the job's Worker spec; a path starting
    with ``MAP`` is below the replica map itself."""

    def mutate(job: dict) -> None:
        below_map = path[1:] if path[:1] == [MAP] else ["Worker", *path]
        keys = ["spec", BY_KIND[job["kind"]].replica_field, *below_map]
        target = job
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
@pytest.mark.parametrize(
    "mutation, field, expected_type",
    [
        (_set_map(["Worker"]), "spec.{map}", "object"),
        (_set([MAP, "Worker"], "x"), "spec.{map}[Worker]", "object"),
        (_set(["replicas"], "2"), "spec.{map}[Worker].replicas", "integer"),
        (_set(["template"], []), "spec.{map}[Worker].template", "object"),
        (_set(["template", "spec"], "x"), "spec.{map}[Worker].template.spec", "object"),
        (
            _set(["template", "spec", "containers"], {}),
            "spec.{map}[Worker].template.spec.containers",
            "array",
        ),
        (
            _set(["template", "spec", "initContainers"], "x"),
            "spec.{map}[Worker].template.spec.initContainers",
            "array",
        ),
        (
            _set(["template", "spec", "containers", 0, "name"], 5),
            "spec.{map}[Worker].template.spec.containers[0].name",
            "string",
        ),
        (
            _set(["template", "spec", "containers", 0, "image"], ["i"]),
            "spec.{map}[Worker].template.spec.containers[0].image",
            "string",
        ),
        (
            _set(["template", "spec", "containers", 0, "ports"], {"p": 1}),
            "spec.{map}[Worker].template.spec.containers[0].ports",
            "array",
        ),
        (
            _set(["template", "spec", "containers", 0, "ports"], [80]),
            "spec.{map}[Worker].template.spec.containers[0].ports[0]",
            "object",
        ),
    ],
)
def test_wrong_json_types_are_invalid_at_their_path(
    kind: str, mutation: Mutation, field: str, expected_type: str
) -> None:
    job = valid_job(kind)
    mutation(job)
    path = field.format(map=BY_KIND[kind].replica_field)
    errs = validate(BY_KIND[kind], job)
    assert any(
        e.field == path and e.type == "Invalid" and e.detail == f"must be of type {expected_type}"
        for e in errs
    ), [str(e) for e in errs]


@pytest.mark.parametrize(
    "job, expected",
    [
        (
            {"metadata": "x", "spec": {}},
            ['metadata: Invalid value: "string": must be of type object'],
        ),
        (
            {"metadata": {"name": 5}, "spec": 7},
            [
                'metadata.name: Invalid value: "integer": must be of type string',
                'spec: Invalid value: "integer": must be of type object',
            ],
        ),
        (
            {"spec": {"runPolicy": ["x"]}},
            ['spec.runPolicy: Invalid value: "array": must be of type object'],
        ),
        (
            {"spec": {"runPolicy": {"schedulingPolicy": 1, "managedBy": 2}}},
            [
                'spec.runPolicy.managedBy: Invalid value: "integer": must be of type string',
                'spec.runPolicy.schedulingPolicy: Invalid value: "integer": must be of type object',
            ],
        ),
    ],
)
def test_wrong_json_types_at_the_top(job: dict, expected: list[str]) -> None:
    found = [str(e) for e in validate(BY_KIND["JAXJob"], job)]
    assert [m for m in found if "jaxReplicaSpecs" not in m] == expected
    assert warnings(BY_KIND["PyTorchJob"], job) == []


def test_every_problem_is_listed_in_one_call() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 20}, name="a" * 60)
    specs = job["spec"]["pytorchReplicaSpecs"]
    specs["Worker"]["restartPolicy"] = "Sometimes"
    specs["Master"]["replicas"] = -1
    specs["Master"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "port_a", "containerPort": 0}
    ]
    specs["Worker"]["template"]["spec"]["initContainers"] = [{"name": "pytorch", "image": "i"}]
    job["spec"]["runPolicy"] = {"cleanPodPolicy": "Never", "backoffLimit": -1}
    job["spec"]["elasticPolicy"] = {"minReplicas": 5, "maxReplicas": 2}
    errs = validate(BY_KIND["PyTorchJob"], job)
    assert [(e.type, e.field) for e in errs] == [
        ("Invalid", "metadata.name"),
        ("NotSupported", "spec.runPolicy.cleanPodPolicy"),
        ("Invalid", "spec.runPolicy.backoffLimit"),
        ("Invalid", "spec.pytorchReplicaSpecs[Master].replicas"),
        ("Invalid", "spec.pytorchReplicaSpecs[Master].template.spec.containers[0].ports[0].name"),
        (
            "Required",
            "spec.pytorchReplicaSpecs[Master].template.spec.containers[0].ports[0].containerPort",
        ),
        ("NotSupported", "spec.pytorchReplicaSpecs[Worker].restartPolicy"),
        ("Duplicate", "spec.pytorchReplicaSpecs[Worker].template.spec.initContainers[0].name"),
        ("Forbidden", "spec.pytorchReplicaSpecs[Master].replicas"),
        ("Invalid", "spec.elasticPolicy.minReplicas"),
    ]
    message = aggregate_message(errs)
    assert message.startswith("[metadata.name: Invalid value: ") and message.count(", spec.") == 9
    assert CLEAN_VALUES in message and RESTART_VALUES in message


QUEUE_ERROR = (
    'spec.runPolicy.schedulingPolicy.queue: Invalid value: "b": field is immutable while the job '
    "is running; suspend the job to change its queue"
)
RUNNING_TRUE = {
    "conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]
}


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
@pytest.mark.parametrize(
    "status, suspended, refused",
    [
        (RUNNING_TRUE, False, True),
        (RUNNING_TRUE, True, False),  # suspended: Kueue may move it
        (None, False, False),  # not started yet
        ({"conditions": [{"type": "Running", "status": "False"}]}, False, False),
        ({"conditions": "garbage"}, False, False),
    ],
)
def test_queue_immutable_while_running(
    kind: str, status: dict | None, suspended: bool, refused: bool
) -> None:
    def job(queue: str, *, with_status: dict | None) -> dict:
        j = valid_job(kind)
        j["spec"]["runPolicy"] = {"suspend": suspended, "schedulingPolicy": {"queue": queue}}
        if with_status is not None:
            j["status"] = with_status
        return j

    old, new = job("a", with_status=status), job("b", with_status=status)
    errs = [str(e) for e in validate_update(BY_KIND[kind], old, new)]
    assert errs == ([QUEUE_ERROR] if refused else [])
    assert validate_update(BY_KIND[kind], old, job("a", with_status=status)) == []


@pytest.mark.parametrize("kind", ALL_KIND_NAMES)
def test_a_running_job_may_get_a_queue_but_not_lose_it(kind: str) -> None:
    """As the CRD's CEL rule: setting a queue where there was none is allowed while running;
    removing one is a change."""
    old = valid_job(kind)
    old["spec"]["runPolicy"] = {"suspend": False}
    old["status"] = RUNNING_TRUE
    new = copy.deepcopy(old)
    new["spec"]["runPolicy"]["schedulingPolicy"] = {"queue": "b"}
    assert validate_update(BY_KIND[kind], old, new) == []
    removed = [str(e) for e in validate_update(BY_KIND[kind], new, old)]
    assert len(removed) == 1 and "queue: Invalid value: null: field is immutable" in removed[0]
