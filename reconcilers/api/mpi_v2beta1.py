"""The MPI Operator v2 API (``kubeflow.org/v2beta1`` MPIJob, mpi-operator v0.8.2): which
version a job was written in, its defaulting (``default.go``) and validation (``validation.go``),
as pure functions the admission webhooks and the controller share.

Why one CRD serves both: ``mpijobs.kubeflow.org`` cannot be two CRDs, and the v1 API
(training-operator's MPIJob) must keep working unchanged. So the CRD serves ``v1`` (the storage
version) and ``v2beta1`` (served, not stored), and a conversion webhook (``mpi_conversion.py``)
moves objects between them. The two versions have (nearly) the same fields, so the conversion is
the identity on ``spec`` and ``status``; what it adds is the one fact the identity would lose:
the version a job was written in, kept in the annotation ``ORIGIN_ANNOTATION``
(``kubetrain.kubeflow.org/api-version``). Converting v2beta1 -> v1 sets it to ``v2beta1`` when
absent, v1 -> v2beta1 sets it to ``v1`` when absent, so a v1 job read through v2beta1 and
written back stays a v1 job. A job without the annotation is a v1 job (every job stored before
v2beta1 was served). The annotation decides everything downstream: which defaulting and
validation the webhooks apply and which controller runs the job (``written_as_v2beta1``). It is
immutable (``validate_origin_update``): a job does not change semantics under its controller.

Why the v1 schema carries v2beta1's fields (``crds.py``): the API server prunes what the storage
version's schema does not name, so ``runLauncherAsWorker``, ``sshAuthMountPath``,
``launcherCreationPolicy`` and ``mpiImplementation`` are in the v1 schema too (documented there
as v2beta1's; the v1 controller ignores them). The other way, v1's deprecated
``spec.cleanPodPolicy`` and ``spec.mainContainer`` are not in v2beta1's schema: a v1 job read
through v2beta1 loses them in that read (mpi-operator's own schema has no such fields).

Defaulting (``default_mpijob_v2beta1``, default.go's ``SetDefaults_MPIJob``):
``runPolicy.cleanPodPolicy`` = ``None``; ``slotsPerWorker`` = 1; ``sshAuthMountPath`` =
``/root/.ssh``; ``mpiImplementation`` = ``OpenMPI``; ``launcherCreationPolicy`` = ``AtStartup``;
Launcher ``restartPolicy`` = ``OnFailure``, ``replicas`` = 1; Worker ``restartPolicy`` =
``Never``, ``replicas`` = 0. It returns a new dict (only the changed parts copied) and never
mutates or raises: a part of the wrong JSON type is left as it is, for validation to report.

Validation (``validate_mpijob_v2beta1``, validation.go's ``ValidateMPIJob``): the same field
paths, error types and messages, in the same order, on the defaulted object: ``metadata.name``
such that ``<name>-worker-<replicas-1>`` is a DNS-1035 label; ``spec.mpiReplicaSpecs`` required
with a Launcher of exactly 1 replica and Workers (optional) of at least 1; each replica spec's
``replicas`` required, ``restartPolicy`` in {Never, OnFailure}, at least one container;
``slotsPerWorker`` required and >= 0; ``runPolicy.cleanPodPolicy`` required and in {All, None,
Running}; ``ttlSecondsAfterFinished``, ``activeDeadlineSeconds``, ``backoffLimit`` >= 0;
``managedBy`` in {kubeflow.org/mpi-operator, kueue.x-k8s.io/multikueue};
``sshAuthMountPath`` required; ``mpiImplementation`` in {Intel, MPICH, OpenMPI}. Where Go's
types cannot hold a value (a string where an integer goes) an Invalid ``must be of type ...``
error is reported at its path instead of raising, as ``validation.py`` does.

Update rules (``validate_mpijob_v2beta1_update``): mpi-operator v0.8.2 has none (it has no
webhook); kubetrain adds the two that keep a job's controller stable: the origin annotation
and ``runPolicy.managedBy`` are immutable (training-operator's rule for v1; v1's CEL rule
does not hold for v2beta1 requests, which the v2beta1 schema validates); then the new object is
validated as on create.
"""

from __future__ import annotations

import re
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import GROUP
from kubetrain.reconcilers.api.validation import (
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    FieldError,
    read_integer,
    read_object,
    read_string,
    shown_value,
    supported_values,
    wrong_type,
)

__all__ = [
    "API_VERSION_V1",
    "API_VERSION_V2BETA1",
    "CLEAN_POD_POLICY_VALUES_V2BETA1",
    "LAUNCHER_CREATION_POLICY_VALUES",
    "MANAGED_BY_VALUES_V2BETA1",
    "MPI_IMPLEMENTATION_VALUES",
    "ORIGIN_ANNOTATION",
    "ORIGIN_FIELD",
    "ORIGIN_VALUES",
    "RESTART_POLICY_VALUES_V2BETA1",
    "V1",
    "V2BETA1",
    "default_mpijob_v2beta1",
    "origin_of",
    "transition_errors_v2beta1",
    "validate_mpijob_v2beta1",
    "validate_mpijob_v2beta1_update",
    "validate_origin",
    "validate_origin_update",
    "written_as_v2beta1",
]

V1 = "v1"
V2BETA1 = "v2beta1"
API_VERSION_V1 = f"{GROUP}/{V1}"
API_VERSION_V2BETA1 = f"{GROUP}/{V2BETA1}"

ORIGIN_ANNOTATION = "kubetrain.kubeflow.org/api-version"
"""The version an MPIJob was written in: ``v1`` or ``v2beta1``; absent means ``v1``."""
ORIGIN_FIELD = f"metadata.annotations[{ORIGIN_ANNOTATION}]"
ORIGIN_VALUES = (V1, V2BETA1)

# validation.go's sets, as ``sets.String.List()`` prints them (sorted).
CLEAN_POD_POLICY_VALUES_V2BETA1 = ("All", "None", "Running")
MPI_IMPLEMENTATION_VALUES = ("Intel", "MPICH", "OpenMPI")
RESTART_POLICY_VALUES_V2BETA1 = ("Never", "OnFailure")
MANAGED_BY_VALUES_V2BETA1 = ("kubeflow.org/mpi-operator", "kueue.x-k8s.io/multikueue")
LAUNCHER_CREATION_POLICY_VALUES = ("AtStartup", "WaitForWorkersReady")

# default.go / constants.go
DEFAULT_CLEAN_POD_POLICY = "None"
DEFAULT_SLOTS_PER_WORKER = 1
DEFAULT_SSH_AUTH_MOUNT_PATH = "/root/.ssh"
DEFAULT_MPI_IMPLEMENTATION = "OpenMPI"
DEFAULT_LAUNCHER_CREATION_POLICY = "AtStartup"
DEFAULT_LAUNCHER_RESTART_POLICY = "OnFailure"
DEFAULT_RESTART_POLICY = "Never"

LAUNCHER = "Launcher"
WORKER = "Worker"


# --- the origin annotation


def _annotations(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def origin_of(obj: Obj) -> Any:
    """The version ``obj`` was written in: its ``ORIGIN_ANNOTATION``, ``v1`` when absent."""
    value = _annotations(obj).get(ORIGIN_ANNOTATION)
    return V1 if value is None else value


def written_as_v2beta1(obj: Obj) -> bool:
    """Whether the MPIJob ``obj`` (in either version) was written as ``kubeflow.org/v2beta1``:
    its ``ORIGIN_ANNOTATION`` is ``v2beta1``. Such a job has mpi-operator v2's semantics
    (defaulting, validation, controller); every other MPIJob is a v1 job."""
    return bool(_annotations(obj).get(ORIGIN_ANNOTATION) == V2BETA1)


def validate_origin(obj: Obj) -> list[FieldError]:
    """The annotation, when set, is ``v1`` or ``v2beta1``."""
    value = _annotations(obj).get(ORIGIN_ANNOTATION)
    if value is None or value in ORIGIN_VALUES:
        return []
    return [
        FieldError(NOT_SUPPORTED, ORIGIN_FIELD, shown_value(value), supported_values(ORIGIN_VALUES))
    ]


def validate_origin_update(old: Obj, new: Obj) -> list[FieldError]:
    """``validate_origin(new)``, and the version a job was written in may not change (absent
    and ``v1`` are the same: a v1 job written back through v2beta1 gains ``v1``)."""
    errs = validate_origin(new)
    if not errs and origin_of(old) != origin_of(new):
        value = _annotations(new).get(ORIGIN_ANNOTATION)
        errs.append(
            FieldError(
                INVALID,
                ORIGIN_FIELD,
                shown_value(value),
                "field is immutable: an MPIJob keeps the API version it was written in "
                f"({GROUP}/{origin_of(old)})",
            )
        )
    return errs


# --- defaulting (default.go)


def _unset_string(value: object) -> bool:
    """Go's ``== ""`` on a string field: absent, null or empty."""
    return value is None or value == ""


def _default_replica(rspec: object, restart_policy: str, replicas: int) -> object:
    if not isinstance(rspec, dict):
        return rspec
    out = dict(rspec)
    if _unset_string(out.get("restartPolicy")):
        out["restartPolicy"] = restart_policy
    if out.get("replicas") is None:
        out["replicas"] = replicas
    return out


def default_mpijob_v2beta1(obj: Obj) -> Obj:
    """A defaulted copy of the v2beta1 MPIJob ``obj`` (``SetDefaults_MPIJob``); ``obj`` is not
    modified (only the changed parts are copied: the result shares the rest)."""
    out = dict(obj)
    raw_spec = obj.get("spec")
    if raw_spec is not None and not isinstance(raw_spec, dict):
        return out
    spec: Obj = dict(raw_spec or {})
    out["spec"] = spec
    raw_policy = spec.get("runPolicy")
    if raw_policy is None or isinstance(raw_policy, dict):
        policy: Obj = dict(raw_policy or {})
        if policy.get("cleanPodPolicy") is None:
            policy["cleanPodPolicy"] = DEFAULT_CLEAN_POD_POLICY
        spec["runPolicy"] = policy
    if spec.get("slotsPerWorker") is None:
        spec["slotsPerWorker"] = DEFAULT_SLOTS_PER_WORKER
    if _unset_string(spec.get("sshAuthMountPath")):
        spec["sshAuthMountPath"] = DEFAULT_SSH_AUTH_MOUNT_PATH
    if _unset_string(spec.get("mpiImplementation")):
        spec["mpiImplementation"] = DEFAULT_MPI_IMPLEMENTATION
    if _unset_string(spec.get("launcherCreationPolicy")):
        spec["launcherCreationPolicy"] = DEFAULT_LAUNCHER_CREATION_POLICY
    specs = spec.get("mpiReplicaSpecs")
    if isinstance(specs, dict) and (LAUNCHER in specs or WORKER in specs):
        specs = dict(specs)
        if LAUNCHER in specs:
            specs[LAUNCHER] = _default_replica(specs[LAUNCHER], DEFAULT_LAUNCHER_RESTART_POLICY, 1)
        if WORKER in specs:
            specs[WORKER] = _default_replica(specs[WORKER], DEFAULT_RESTART_POLICY, 0)
        spec["mpiReplicaSpecs"] = specs
    return out


# --- validation (validation.go)

_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_MAX_DNS_LABEL_LENGTH = 63


def _enum(value: str, path: str, allowed: tuple[str, ...], errs: list[FieldError]) -> None:
    if value not in allowed:
        errs.append(FieldError(NOT_SUPPORTED, path, value, supported_values(allowed)))


def _dns1035_problems(value: str) -> list[str]:
    """``IsDNS1035Label``: its messages, [] when valid."""
    problems: list[str] = []
    if len(value) > _MAX_DNS_LABEL_LENGTH:
        problems.append(f"must be no more than {_MAX_DNS_LABEL_LENGTH} characters")
    if not _DNS1035.fullmatch(value):
        problems.append(_DNS1035_MSG)
    return problems


def _validate_name(name: object, specs: object) -> list[FieldError]:
    """``validateMPIJobName``: the last worker's hostname must be a DNS-1035 label."""
    errs: list[FieldError] = []
    job_name = read_string(name, "metadata.name", errs)
    if errs:
        return errs
    job_name = job_name or ""
    replicas = 1
    worker = specs.get(WORKER) if isinstance(specs, dict) else None
    if isinstance(worker, dict):
        count = worker.get("replicas")
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            replicas = count
    hostname = f"{job_name}-worker-{replicas - 1}"
    problems = _dns1035_problems(hostname)
    if problems:
        detail = (
            f'will not able to create pod and service with invalid DNS label "{hostname}": '
            + ", ".join(problems)
        )
        errs.append(FieldError(INVALID, "metadata.name", job_name, detail))
    return errs


def _validate_replica_spec(spec: Obj, path: str) -> list[FieldError]:
    """``validateReplicaSpec``."""
    errs: list[FieldError] = []
    if spec.get("replicas") is None:
        errs.append(
            FieldError(REQUIRED, f"{path}.replicas", detail="must define number of replicas")
        )
    restart = spec.get("restartPolicy")
    if restart is not None and not isinstance(restart, str):
        errs.append(wrong_type(f"{path}.restartPolicy", restart, "string"))
    else:
        _enum(restart or "", f"{path}.restartPolicy", RESTART_POLICY_VALUES_V2BETA1, errs)
    template = read_object(spec.get("template"), f"{path}.template", errs)
    pod_spec = read_object((template or {}).get("spec"), f"{path}.template.spec", errs)
    containers = (pod_spec or {}).get("containers")
    if containers is not None and not isinstance(containers, list):
        errs.append(wrong_type(f"{path}.template.spec.containers", containers, "array"))
    elif not containers:
        errs.append(
            FieldError(
                REQUIRED,
                f"{path}.template.spec.containers",
                detail="must define at least one container",
            )
        )
    return errs


def _validate_replica_specs(specs: object, path: str) -> list[FieldError]:
    """``validateMPIReplicaSpecs`` with the Launcher and Worker rules."""
    errs: list[FieldError] = []
    if specs is None:
        return [FieldError(REQUIRED, path, detail="must have replica specs")]
    if not isinstance(specs, dict):
        return [wrong_type(path, specs, "object")]
    launcher_path = f"{path}[{LAUNCHER}]"
    launcher = read_object(specs.get(LAUNCHER), launcher_path, errs)
    if specs.get(LAUNCHER) is None:
        errs.append(
            FieldError(REQUIRED, launcher_path, detail=f"must have {LAUNCHER} replica spec")
        )
    elif launcher is not None:
        errs += _validate_replica_spec(launcher, launcher_path)
        replicas = read_integer(launcher.get("replicas"), f"{launcher_path}.replicas", errs)
        if replicas is not None and replicas != 1:
            errs.append(FieldError(INVALID, f"{launcher_path}.replicas", replicas, "must be 1"))
    worker_path = f"{path}[{WORKER}]"
    worker = read_object(specs.get(WORKER), worker_path, errs)
    if worker is not None:
        errs += _validate_replica_spec(worker, worker_path)
        replicas = read_integer(worker.get("replicas"), f"{worker_path}.replicas", errs)
        if replicas is not None and replicas <= 0:
            errs.append(
                FieldError(
                    INVALID,
                    f"{worker_path}.replicas",
                    replicas,
                    "must be greater than or equal to 1",
                )
            )
    return errs


def _validate_run_policy(value: object, path: str) -> list[FieldError]:
    """``validateRunPolicy``."""
    errs: list[FieldError] = []
    policy = read_object(value, path, errs)
    if errs:
        return errs
    policy = policy or {}
    clean = policy.get("cleanPodPolicy")
    if clean is None:
        errs.append(
            FieldError(REQUIRED, f"{path}.cleanPodPolicy", detail="must have clean Pod policy")
        )
    elif (text := read_string(clean, f"{path}.cleanPodPolicy", errs)) is not None:
        _enum(text, f"{path}.cleanPodPolicy", CLEAN_POD_POLICY_VALUES_V2BETA1, errs)
    for name in ("ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"):
        read_integer(policy.get(name), f"{path}.{name}", errs, minimum=0)
    managed_by = read_string(policy.get("managedBy"), f"{path}.managedBy", errs)
    if managed_by is not None:
        _enum(managed_by, f"{path}.managedBy", MANAGED_BY_VALUES_V2BETA1, errs)
    return errs


def validate_mpijob_v2beta1(obj: Obj) -> list[FieldError]:
    """Every rule of mpi-operator's ``ValidateMPIJob`` ``obj`` breaks, in its order; [] when
    valid. Call it on the defaulted job (``default_mpijob_v2beta1``). Never raises."""
    errs: list[FieldError] = []
    metadata = read_object(obj.get("metadata"), "metadata", errs) or {}
    spec_errs: list[FieldError] = []
    spec = read_object(obj.get("spec"), "spec", spec_errs)
    specs = (spec or {}).get("mpiReplicaSpecs")
    errs += _validate_name(metadata.get("name"), specs)
    if spec_errs:
        return errs + spec_errs
    spec = spec or {}
    errs += _validate_replica_specs(specs, "spec.mpiReplicaSpecs")
    slots = spec.get("slotsPerWorker")
    if slots is None:
        errs.append(
            FieldError(
                REQUIRED, "spec.slotsPerWorker", detail="must have number of slots per worker"
            )
        )
    else:
        read_integer(slots, "spec.slotsPerWorker", errs, minimum=0)
    errs += _validate_run_policy(spec.get("runPolicy"), "spec.runPolicy")
    mount = spec.get("sshAuthMountPath")
    if mount is not None and not isinstance(mount, str):
        errs.append(wrong_type("spec.sshAuthMountPath", mount, "string"))
    elif not mount:
        errs.append(
            FieldError(
                REQUIRED,
                "spec.sshAuthMountPath",
                detail="must have a mount path for SSH credentials",
            )
        )
    implementation = spec.get("mpiImplementation")
    if implementation is not None and not isinstance(implementation, str):
        errs.append(wrong_type("spec.mpiImplementation", implementation, "string"))
    else:
        _enum(implementation or "", "spec.mpiImplementation", MPI_IMPLEMENTATION_VALUES, errs)
    return errs


def _managed_by(obj: Obj) -> Any:
    spec = obj.get("spec")
    policy = spec.get("runPolicy") if isinstance(spec, dict) else None
    return policy.get("managedBy") if isinstance(policy, dict) else None


def transition_errors_v2beta1(old: Obj, new: Obj) -> list[FieldError]:
    """The update rules alone: the origin annotation and ``runPolicy.managedBy`` immutable."""
    errs = validate_origin_update(old, new)
    new_managed_by = _managed_by(new)
    if _managed_by(old) != new_managed_by:
        errs.append(
            FieldError(
                INVALID,
                "spec.runPolicy.managedBy",
                shown_value(new_managed_by),
                "field is immutable",
            )
        )
    return errs


def validate_mpijob_v2beta1_update(old: Obj, new: Obj) -> list[FieldError]:
    """``transition_errors_v2beta1(old, new)``, then ``validate_mpijob_v2beta1(new)``."""
    return transition_errors_v2beta1(old, new) + validate_mpijob_v2beta1(new)
