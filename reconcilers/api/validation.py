"""The validating-webhook rules of the reference (section 4), per kind, as field errors.

Used twice: by the admission webhook (the mutating webhook applies ``default_job`` first, then
the validating webhook calls ``validate``/``validate_update`` on the result) and by the controller
(on the *defaulted* object, before it creates anything: the last line of defence). Errors print
like Kubernetes' ``field.Error`` (``spec.pytorchReplicaSpecs[Master].replicas: Forbidden: must be
1``; map keys in brackets, as ``field.Path.Key`` renders them), so clients see the reference's
messages.

Contract: ``validate`` and ``validate_update`` never raise, whatever the JSON shapes (a wrongly
typed value is an Invalid error at its path, ``must be of type <object|array|string|integer|
boolean>``, with the JSON type found as the value, as the API server's schema check prints it);
every problem is listed in one call; every error's field is ``metadata``/``spec`` or below.

Rules beyond the reference's webhooks, so that anything the controller or Kubernetes would fail
on later (creating pods, services, the HPA) is refused at admission instead:
- ``metadata.name`` short enough that every pod/service name ``<job>-<type>-<index>`` (MPIJob's
  launcher: ``<job>-launcher``) is a DNS-1035 label of at most 63 characters. An empty name (a
  create with ``generateName``, seen by the mutating webhook) is not checked at all; the
  validating webhook sees the generated name;
- TFJob's free-form replica types: lower-cased, a DNS-1123 label (they are part of pod names and
  the ``replica-type`` label); types equal but for case are Duplicate (their pods would collide);
- ``replicas`` an integer >= 0; ``restartPolicy`` (when set) in ``RESTART_POLICY_VALUES``;
- containers and initContainers: ``name`` required, a DNS-1123 label, unique across both lists
  and not the name of an init container the operator adds (PyTorchJob workers with a Master:
  ``init-pytorch``; MPIJob launcher: ``kubectl-delivery``); ``image`` required;
- ports: ``name`` an IANA_SVC_NAME, unique per container; ``containerPort`` in 1..65535. The
  default container's ports become the ports of the job's headless services (not MPIJob), so
  there, with more than one port, each needs a name, and port numbers must be distinct;
- ``spec.runPolicy``: ``cleanPodPolicy`` in ``CLEAN_POD_POLICY_VALUES``; ``backoffLimit``,
  ``activeDeadlineSeconds``, ``ttlSecondsAfterFinished`` and ``schedulingPolicy.minAvailable``
  integers >= 0; ``suspend`` a boolean; ``schedulingPolicy.queue`` a string. MPIJob: the
  deprecated ``spec.cleanPodPolicy`` likewise, ``spec.slotsPerWorker`` an integer >= 0;
- PyTorchJob/PaddleJob ``spec.elasticPolicy``: ``minReplicas``/``maxReplicas`` >= 1 and
  min <= max (the HPA's own rules), ``maxRestarts`` >= 0;
- update: a set ``spec.runPolicy.schedulingPolicy.queue`` may not change or go while the job runs
  (a Running condition with status True and not suspended); a job not started yet, or suspended,
  may move to another queue (Kueue does), and a running one may get a first queue (as the CRD's
  CEL rule, which holds where no webhook is installed).

The controller judges a job until it starts (``status.startTime``): a job an earlier, less strict
kubetrain started keeps running (``common/status.py``).

Decisions (reference section 10):
- MPIJob has no webhook in the reference, only controller-side checks; kubetrain applies the MPI
  rules (section 4) both at admission and in the controller, plus the ``managedBy`` rule.
- Quirk 4 fixed: ``managedBy`` immutability compares old with new (``validate_update``) for
  every kind, and JAXJob validates ``managedBy`` like the others.
- Quirk 6 fixed by persisted defaults: ``Master.replicas`` must be exactly 1, and ``validate``
  still refuses nil, but the mutating webhook sets nil to 1 before validation (the reference
  had no defaulting at admission and refused it), and so does the controller, which validates
  the defaulted object.
- Quirk 5 kept: TFJob accepts any replica type key (the controller camel-cases known ones), as
  long as it can name pods (see above).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kubetrain.base.objects import Obj, json_type
from kubetrain.reconcilers.api.kinds import (
    MPIJOB,
    PADDLEJOB,
    PYTORCHJOB,
    TFJOB,
    XGBOOSTJOB,
    JobKind,
)

REQUIRED = "Required"
INVALID = "Invalid"
NOT_SUPPORTED = "NotSupported"
FORBIDDEN = "Forbidden"
DUPLICATE = "Duplicate"

_TYPE_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    DUPLICATE: "Duplicate value",
}
_NO_VALUE_TYPES = (REQUIRED, FORBIDDEN)

MANAGED_BY_VALUES = ("kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue")
RESTART_POLICY_VALUES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICY_VALUES = ("None", "Running", "All")

MAX_DNS_LABEL_LENGTH = 63
MAX_PORT_NAME_LENGTH = 15
MIN_PORT_NUMBER = 1
MAX_PORT_NUMBER = 65535

# Init containers the controller adds to pods (reconcilers/kinds/pytorch.py INIT_CONTAINER_NAME,
# reconcilers/kinds/mpi.py KUBECTL_DELIVERY; a test keeps them equal). A template container of
# the same name would make Kubernetes refuse the pod: names are unique across both lists.
PYTORCH_INIT_CONTAINER_NAME = "init-pytorch"
MPI_KUBECTL_DELIVERY_NAME = "kubectl-delivery"
# MPIJob's launcher pod is ``<job>-launcher`` (reconcilers/kinds/mpi.py LAUNCHER_SUFFIX).
MPI_LAUNCHER_SUFFIX = "-launcher"

_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_PORT_NAME_CHARSET = re.compile(r"[-a-z0-9]+")
_PORT_NAME_LETTER = re.compile(r"[a-z]")


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    return str(value)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One rule violation: ``type`` is one of Required, Invalid, NotSupported, Forbidden,
    Duplicate; ``field`` the path; ``bad_value`` shown for Invalid/NotSupported/Duplicate."""

    type: str
    field: str
    bad_value: Any = None
    detail: str = ""

    @property
    def message(self) -> str:
        """The error without its field (``field.Error.ErrorBody``): a Status cause's message."""
        body = _TYPE_TEXT[self.type]
        if self.type not in _NO_VALUE_TYPES:
            body = f"{body}: {_go_value(self.bad_value)}"
        if self.detail:
            body = f"{body}: {self.detail}"
        return body

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def aggregate_message(errors: list[FieldError]) -> str:
    """The errors as one message, as ``ErrorList.ToAggregate().Error()`` prints them."""
    if len(errors) == 1:
        return str(errors[0])
    return "[" + ", ".join(str(e) for e in errors) + "]"


def supported_values(values: tuple[str, ...]) -> str:
    return "supported values: " + ", ".join(json.dumps(v) for v in values)


# --- JSON shape readers: each returns the value when it has the expected type, else None (and
# --- appends the Invalid error for a wrong type; null counts as absent, never as an error).


def shown_value(value: object) -> object:
    """``value`` as an error's bad value: itself when a JSON scalar, else its JSON type name
    (errors stay hashable and short: the webhook puts them in sets)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json_type(value)


def wrong_type(path: str, value: object, expected: str) -> FieldError:
    return FieldError(INVALID, path, json_type(value), f"must be of type {expected}")


def is_json_integer(value: object) -> bool:
    """A JSON integer (``true``/``false`` are not, although Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def read_object(value: object, path: str, errs: list[FieldError]) -> Obj | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    errs.append(wrong_type(path, value, "object"))
    return None


def read_string(value: object, path: str, errs: list[FieldError]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    errs.append(wrong_type(path, value, "string"))
    return None


def _read_array(value: object, path: str, errs: list[FieldError]) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return value
    errs.append(wrong_type(path, value, "array"))
    return None


def read_integer(
    value: object, path: str, errs: list[FieldError], *, minimum: int | None = None
) -> int | None:
    """The integer (also when below ``minimum``: that error is appended, the value returned so
    that callers can compare it further); None when absent or not an integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errs.append(wrong_type(path, value, "integer"))
        return None
    if minimum is not None and value < minimum:
        errs.append(FieldError(INVALID, path, value, f"must be greater than or equal to {minimum}"))
    return value


def _check_boolean(value: object, path: str, errs: list[FieldError]) -> None:
    if value is not None and not isinstance(value, bool):
        errs.append(wrong_type(path, value, "boolean"))


def _check_string(value: object, path: str, errs: list[FieldError]) -> None:
    if value is not None and not isinstance(value, str):
        errs.append(wrong_type(path, value, "string"))


def _check_enum(value: object, path: str, allowed: tuple[str, ...], errs: list[FieldError]) -> None:
    """``value`` (when set) a string in ``allowed``: NotSupported naming them, else Invalid."""
    if value is None:
        return
    if not isinstance(value, str):
        errs.append(wrong_type(path, value, "string"))
    elif value not in allowed:
        errs.append(FieldError(NOT_SUPPORTED, path, value, supported_values(allowed)))


# --- Kubernetes' name checks (k8s.io/apimachinery/pkg/util/validation), message for message.


def _dns1123_label_problems(value: str) -> list[str]:
    """``IsDNS1123Label``: the messages, [] when ``value`` is a valid label."""
    problems: list[str] = []
    if len(value) > MAX_DNS_LABEL_LENGTH:
        problems.append(f"must be no more than {MAX_DNS_LABEL_LENGTH} characters")
    if not _DNS1123_LABEL.fullmatch(value):
        problems.append(_DNS1123_LABEL_MSG)
    return problems


def _port_name_problems(value: str) -> list[str]:
    """``IsValidPortName`` (IANA_SVC_NAME): the messages, [] when ``value`` is valid."""
    problems: list[str] = []
    if len(value) > MAX_PORT_NAME_LENGTH:
        problems.append(f"must be no more than {MAX_PORT_NAME_LENGTH} characters")
    if not _PORT_NAME_CHARSET.fullmatch(value):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(value):
        problems.append("must contain at least one letter (a-z)")
    if "--" in value:
        problems.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def validate_name(name: str) -> list[FieldError]:
    """``metadata.name`` must be a DNS-1035 label (pod and service names derive from it)."""
    problems: list[str] = []
    if len(name) > MAX_DNS_LABEL_LENGTH:
        problems.append(f"must be no more than {MAX_DNS_LABEL_LENGTH} characters")
    if not _DNS1035.fullmatch(name):
        problems.append(_DNS1035_MSG)
    if not problems:
        return []
    return [FieldError(INVALID, "metadata.name", name, "should match: " + ",".join(problems))]


# --- metadata.name and the names derived from it.


def _names_pods(kind: JobKind, rtype: str) -> bool:
    """Whether pods of ``rtype`` can exist: a known type, or (TFJob) a type whose lower-cased
    spelling can be part of a pod name (other types are refused by their own rule)."""
    if rtype in kind.replica_types:
        return True
    return kind is TFJOB and not _dns1123_label_problems(rtype.lower())


def _longest_pod_name(kind: JobKind, job_name: str, rtype: str, rspec: object) -> str | None:
    """The longest pod (and service) name of ``rtype``: index ``replicas - 1``, nil (or a wrong
    replicas, refused elsewhere) counted as 1 replica; None when it has no pods (replicas 0)."""
    if not isinstance(rspec, dict):
        return None
    _, replicas = _readable_replicas(rspec)
    count = 1 if replicas is None or replicas < 0 else replicas
    if count == 0:
        return None
    if kind is MPIJOB and rtype == "Launcher":
        return job_name + MPI_LAUNCHER_SUFFIX
    # As ``common/naming.general_name`` builds it.
    return f"{job_name}-{rtype.lower()}-{count - 1}".replace("/", "-")


def _validate_derived_names(kind: JobKind, job_name: str, specs: Obj) -> list[FieldError]:
    """Every pod/service name must be a DNS-1035 label of at most 63 characters: the job name's
    limit is 63 minus the longest suffix. A type whose suffix alone is too long (TFJob's
    free-form types, absurd replicas) is refused at its key, since no job name can fit."""
    errs: list[FieldError] = []
    longest: str | None = None
    for rtype, rspec in specs.items():
        if not _names_pods(kind, rtype):
            continue
        derived = _longest_pod_name(kind, job_name, rtype, rspec)
        if derived is None:
            continue
        suffix = derived[len(job_name) :]
        if len(suffix) >= MAX_DNS_LABEL_LENGTH:
            errs.append(
                FieldError(
                    INVALID,
                    f"spec.{kind.replica_field}[{rtype}]",
                    rtype,
                    f'is too long: its pod names "<job>{suffix}" must be no more than '
                    f"{MAX_DNS_LABEL_LENGTH} characters",
                )
            )
        elif longest is None or len(derived) > len(longest):
            longest = derived
    if longest is not None and len(longest) > MAX_DNS_LABEL_LENGTH:
        limit = MAX_DNS_LABEL_LENGTH - (len(longest) - len(job_name))
        named = "pod names" if kind is MPIJOB else "pod and service names"
        detail = (
            f"must be no more than {limit} characters for this job: its {named} "
            f"(<job>-<replica type>-<index>) must be DNS-1035 labels of at most "
            f'{MAX_DNS_LABEL_LENGTH} characters, and the longest, "{longest}", has {len(longest)}'
        )
        errs.insert(0, FieldError(INVALID, "metadata.name", job_name, detail))
    return errs


def _validate_job_name(kind: JobKind, name: object, specs: object) -> list[FieldError]:
    """The name rules; nothing at all for an empty name (``generateName``, not generated yet)."""
    if name is None or name == "":
        return []
    if not isinstance(name, str):
        return [wrong_type("metadata.name", name, "string")]
    errs = validate_name(name)
    if not errs and isinstance(specs, dict):
        errs = _validate_derived_names(kind, name, specs)
    return errs


# --- spec.runPolicy, MPIJob's extra fields, elasticPolicy.


def _validate_run_policy(value: object) -> list[FieldError]:
    path = "spec.runPolicy"
    errs: list[FieldError] = []
    policy = read_object(value, path, errs)
    if policy is None:
        return errs
    managed = policy.get("managedBy")
    if managed is not None:
        if not isinstance(managed, str):
            errs.append(wrong_type(f"{path}.managedBy", managed, "string"))
        elif managed not in MANAGED_BY_VALUES:
            errs.append(
                FieldError(
                    NOT_SUPPORTED,
                    f"{path}.managedBy",
                    managed,
                    supported_values(MANAGED_BY_VALUES),
                )
            )
    _check_enum(
        policy.get("cleanPodPolicy"), f"{path}.cleanPodPolicy", CLEAN_POD_POLICY_VALUES, errs
    )
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        read_integer(policy.get(field), f"{path}.{field}", errs, minimum=0)
    _check_boolean(policy.get("suspend"), f"{path}.suspend", errs)
    scheduling_path = f"{path}.schedulingPolicy"
    scheduling = read_object(policy.get("schedulingPolicy"), scheduling_path, errs)
    if scheduling is not None:
        read_integer(
            scheduling.get("minAvailable"), f"{scheduling_path}.minAvailable", errs, minimum=0
        )
        _check_string(scheduling.get("queue"), f"{scheduling_path}.queue", errs)
    return errs


def _validate_mpi_fields(spec: Obj) -> list[FieldError]:
    """MPIJob's deprecated ``spec.cleanPodPolicy`` and ``spec.slotsPerWorker``."""
    errs: list[FieldError] = []
    _check_enum(spec.get("cleanPodPolicy"), "spec.cleanPodPolicy", CLEAN_POD_POLICY_VALUES, errs)
    read_integer(spec.get("slotsPerWorker"), "spec.slotsPerWorker", errs, minimum=0)
    return errs


def _validate_elastic_policy(value: object) -> list[FieldError]:
    """PyTorchJob/PaddleJob ``spec.elasticPolicy``: the bounds the HPA and torchrun need."""
    path = "spec.elasticPolicy"
    errs: list[FieldError] = []
    elastic = read_object(value, path, errs)
    if elastic is None:
        return errs
    low = read_integer(elastic.get("minReplicas"), f"{path}.minReplicas", errs, minimum=1)
    high = read_integer(elastic.get("maxReplicas"), f"{path}.maxReplicas", errs, minimum=1)
    if low is not None and high is not None and low > high:
        errs.append(
            FieldError(
                INVALID,
                f"{path}.minReplicas",
                low,
                f"must be less than or equal to {path}.maxReplicas ({high})",
            )
        )
    read_integer(elastic.get("maxRestarts"), f"{path}.maxRestarts", errs, minimum=0)
    return errs


# --- Replica specs, templates, containers, ports.


def _reserved_container_names(kind: JobKind, specs: Obj, rtype: str) -> dict[str, str]:
    """Init containers the operator adds to ``rtype``'s pods: name -> why it is reserved."""
    if kind is PYTORCHJOB and rtype == "Worker" and "Master" in specs:
        return {PYTORCH_INIT_CONTAINER_NAME: "Worker pods of a job with a Master"}
    if kind is MPIJOB and rtype == "Launcher":
        return {MPI_KUBECTL_DELIVERY_NAME: "Launcher pods"}
    return {}


def _validate_ports(
    path: str, value: object, *, exposed_by: str | None, errs: list[FieldError]
) -> None:
    """A container's ``ports``. ``exposed_by``: the container's name when the job's headless
    services expose its ports (then names are needed with several ports, numbers distinct)."""
    ports = _read_array(value, path, errs)
    if not ports:
        return
    names: set[str] = set()
    numbers: set[int] = set()
    for j, port in enumerate(ports):
        port_path = f"{path}[{j}]"
        if not isinstance(port, dict):
            errs.append(wrong_type(port_path, port, "object"))
            continue
        name = port.get("name")
        if name is None or name == "":
            if exposed_by is not None and len(ports) > 1:
                errs.append(
                    FieldError(
                        REQUIRED,
                        f"{port_path}.name",
                        detail=(
                            f"must be set: the job's headless services expose every port of "
                            f"container {exposed_by}, and a service with more than one port "
                            f"needs each one named"
                        ),
                    )
                )
        elif not isinstance(name, str):
            errs.append(wrong_type(f"{port_path}.name", name, "string"))
        else:
            problems = _port_name_problems(name)
            for problem in problems:
                errs.append(FieldError(INVALID, f"{port_path}.name", name, problem))
            if not problems:
                if name in names:
                    errs.append(FieldError(DUPLICATE, f"{port_path}.name", name))
                names.add(name)
        number = port.get("containerPort")
        number_path = f"{port_path}.containerPort"
        if number is None or (is_json_integer(number) and number == 0):
            errs.append(FieldError(REQUIRED, number_path))
        elif not is_json_integer(number):
            errs.append(wrong_type(number_path, number, "integer"))
        elif not MIN_PORT_NUMBER <= number <= MAX_PORT_NUMBER:
            errs.append(
                FieldError(
                    INVALID,
                    number_path,
                    number,
                    f"must be between {MIN_PORT_NUMBER} and {MAX_PORT_NUMBER}, inclusive",
                )
            )
        elif exposed_by is not None:
            if number in numbers:
                errs.append(
                    FieldError(
                        DUPLICATE,
                        number_path,
                        number,
                        f"the job's headless services expose every port of container "
                        f"{exposed_by}, and a service cannot expose a port number twice",
                    )
                )
            numbers.add(number)


def _validate_container(
    path: str,
    container: object,
    *,
    seen_names: set[str],
    reserved_names: dict[str, str],
    exposed_by: str | None,
    errs: list[FieldError],
) -> None:
    """One entry of ``containers``/``initContainers``; ``seen_names`` collects the names of the
    pod's containers so far (both lists), a repeated one is Duplicate here."""
    if not isinstance(container, dict):
        errs.append(wrong_type(path, container, "object"))
        return
    image = container.get("image")
    if image is None or image == "":
        errs.append(FieldError(REQUIRED, f"{path}.image", detail="must be required"))
    elif not isinstance(image, str):
        errs.append(wrong_type(f"{path}.image", image, "string"))
    name = container.get("name")
    name_path = f"{path}.name"
    if name is None or name == "":
        errs.append(FieldError(REQUIRED, name_path, detail="must be required"))
    elif not isinstance(name, str):
        errs.append(wrong_type(name_path, name, "string"))
    else:
        for problem in _dns1123_label_problems(name):
            errs.append(FieldError(INVALID, name_path, name, problem))
        if name in seen_names:
            errs.append(FieldError(DUPLICATE, name_path, name))
        elif name in reserved_names:
            errs.append(
                FieldError(
                    INVALID,
                    name_path,
                    name,
                    f"is reserved: the operator adds an init container of this name to "
                    f"{reserved_names[name]}",
                )
            )
        seen_names.add(name)
    _validate_ports(f"{path}.ports", container.get("ports"), exposed_by=exposed_by, errs=errs)


def _validate_template(
    kind: JobKind, role: str, template: object, reserved_names: dict[str, str]
) -> list[FieldError]:
    """``<role>.template``: containers (>= 1, one named the kind's default container but for
    MPIJob) and initContainers."""
    errs: list[FieldError] = []
    template_obj = read_object(template, f"{role}.template", errs)
    if errs:
        return errs
    pod_spec = read_object((template_obj or {}).get("spec"), f"{role}.template.spec", errs)
    if errs:
        return errs
    pod_spec = pod_spec or {}
    containers_path = f"{role}.template.spec.containers"
    containers = _read_array(pod_spec.get("containers"), containers_path, errs)
    init_path = f"{role}.template.spec.initContainers"
    init_containers = _read_array(pod_spec.get("initContainers"), init_path, errs)
    if errs:
        return errs
    if not containers:
        errs.append(FieldError(REQUIRED, containers_path, detail="must be specified"))
    seen_names: set[str] = set()
    has_default = False
    for i, container in enumerate(containers or []):
        is_default = isinstance(container, dict) and container.get("name") == kind.default_container
        # The first container of the default name is the one whose ports the services expose.
        exposed = is_default and not has_default and kind is not MPIJOB
        has_default = has_default or is_default
        _validate_container(
            f"{containers_path}[{i}]",
            container,
            seen_names=seen_names,
            reserved_names=reserved_names,
            exposed_by=kind.default_container if exposed else None,
            errs=errs,
        )
    if kind is not MPIJOB and not has_default:
        errs.append(
            FieldError(
                REQUIRED,
                containers_path,
                detail=f"must have at least one container with name {kind.default_container}",
            )
        )
    for i, container in enumerate(init_containers or []):
        _validate_container(
            f"{init_path}[{i}]",
            container,
            seen_names=seen_names,
            reserved_names=reserved_names,
            exposed_by=None,
            errs=errs,
        )
    return errs


def _validate_replica_spec(
    kind: JobKind, role: str, rspec: object, reserved_names: dict[str, str]
) -> list[FieldError]:
    """One replica spec (``role`` = its path): replicas, restartPolicy, template. A null spec
    reads as an empty one (no containers)."""
    errs: list[FieldError] = []
    if rspec is not None and not isinstance(rspec, dict):
        return [wrong_type(role, rspec, "object")]
    rspec = rspec or {}
    read_integer(rspec.get("replicas"), f"{role}.replicas", errs, minimum=0)
    policy = rspec.get("restartPolicy")
    if policy != "":  # "" is unset, as the defaulter reads it
        _check_enum(policy, f"{role}.restartPolicy", RESTART_POLICY_VALUES, errs)
    errs += _validate_template(kind, role, rspec.get("template"), reserved_names)
    return errs


def _validate_replica_type(kind: JobKind, role: str, rtype: str) -> list[FieldError]:
    """The replica map key: one of the kind's types; TFJob: any, if it can name pods."""
    if kind is not TFJOB:
        if rtype in kind.replica_types:
            return []
        return [FieldError(NOT_SUPPORTED, role, rtype, supported_values(kind.replica_types))]
    if rtype in kind.replica_types:  # quirk 5 kept for TF: any other key is accepted, too
        return []
    lowered = rtype.lower()
    return [FieldError(INVALID, role, lowered, p) for p in _dns1123_label_problems(lowered)]


def _validate_replica_specs(kind: JobKind, specs: object) -> list[FieldError]:
    path = f"spec.{kind.replica_field}"
    if specs is None:
        return [FieldError(REQUIRED, path, detail="must be required")]
    if not isinstance(specs, dict):
        return [wrong_type(path, specs, "object")]
    errs: list[FieldError] = []
    first_of_lowered: dict[str, str] = {}
    for rtype, rspec in specs.items():
        role = f"{path}[{rtype}]"
        type_errs = _validate_replica_type(kind, role, rtype)
        errs += type_errs
        if not type_errs:
            first = first_of_lowered.setdefault(rtype.lower(), rtype)
            if first != rtype:
                errs.append(
                    FieldError(
                        DUPLICATE,
                        role,
                        rtype,
                        f"same type as {first}: replica types are case-insensitive",
                    )
                )
        reserved = _reserved_container_names(kind, specs, rtype)
        errs += _validate_replica_spec(kind, role, rspec, reserved)
    return errs


def _readable_replicas(rspec: object) -> tuple[bool, int | None]:
    """``(readable, replicas)``: readable is False when the spec or its ``replicas`` has the
    wrong JSON type (refused by its own rule, so the kind rules leave it alone)."""
    if rspec is None:
        return True, None
    if not isinstance(rspec, dict):
        return False, None
    value = rspec.get("replicas")
    if value is None:
        return True, None
    if isinstance(value, bool) or not isinstance(value, int):
        return False, None
    return True, value


def _kind_rules(kind: JobKind, spec: Obj, specs: Obj) -> list[FieldError]:
    path = f"spec.{kind.replica_field}"
    errs: list[FieldError] = []
    if kind is TFJOB and sum(1 for t in specs if t in ("Chief", "Master")) > 1:
        errs.append(
            FieldError(FORBIDDEN, path, detail="must not have more than 1 Chief or Master role")
        )
    if kind in (PYTORCHJOB, XGBOOSTJOB) and "Master" in specs:
        readable, master = _readable_replicas(specs["Master"])
        if readable and master != 1:
            errs.append(FieldError(FORBIDDEN, f"{path}[Master].replicas", detail="must be 1"))
    if kind is PYTORCHJOB:
        readable, worker = _readable_replicas(specs.get("Worker"))
        if readable and worker is not None and worker < 1:
            errs.append(
                FieldError(FORBIDDEN, f"{path}[Worker].replicas", detail="must be at least 1")
            )
        elastic = spec.get("elasticPolicy")
        if isinstance(elastic, dict):
            if "Worker" not in specs:
                errs.append(
                    FieldError(
                        REQUIRED,
                        f"{path}[Worker]",
                        detail="must be configured if elastic policy is used",
                    )
                )
            if elastic.get("nProcPerNode") is not None and spec.get("nprocPerNode") is not None:
                errs.append(
                    FieldError(
                        FORBIDDEN,
                        "spec.elasticPolicy.nProcPerNode",
                        detail="must not be used with spec.nprocPerNode",
                    )
                )
    if kind is XGBOOSTJOB and "Master" not in specs:
        errs.append(FieldError(REQUIRED, f"{path}[Master]", detail="must be present"))
    if kind is MPIJOB:
        if "Launcher" not in specs:
            errs.append(FieldError(REQUIRED, f"{path}[Launcher]", detail="must be present"))
        else:
            readable, launcher = _readable_replicas(specs["Launcher"])
            if readable and launcher is not None and launcher != 1:
                errs.append(FieldError(FORBIDDEN, f"{path}[Launcher].replicas", detail="must be 1"))
    return errs


# --- Entry points.


def validate(kind: JobKind, job: Obj) -> list[FieldError]:
    """All rule violations of ``job`` (a create, or the new object of an update); [] if valid.

    Never raises, whatever the JSON shapes; see the module docstring for the rules."""
    errs: list[FieldError] = []
    metadata = read_object(job.get("metadata"), "metadata", errs) or {}
    spec_errs: list[FieldError] = []
    spec = read_object(job.get("spec"), "spec", spec_errs)
    specs = (spec or {}).get(kind.replica_field)
    errs += _validate_job_name(kind, metadata.get("name"), specs)
    if spec_errs:  # a spec that is no object: that is the one problem below ``spec``
        return errs + spec_errs
    spec = spec or {}
    errs += _validate_run_policy(spec.get("runPolicy"))
    if kind is MPIJOB:
        errs += _validate_mpi_fields(spec)
    errs += _validate_replica_specs(kind, specs)
    if isinstance(specs, dict):
        errs += _kind_rules(kind, spec, specs)
    if kind in (PYTORCHJOB, PADDLEJOB):
        errs += _validate_elastic_policy(spec.get("elasticPolicy"))
    return errs


def _run_policy_of(job: Obj) -> Obj:
    """``spec.runPolicy`` when readable, else {} (shapes are ``validate``'s business)."""
    spec = job.get("spec")
    policy = spec.get("runPolicy") if isinstance(spec, dict) else None
    return policy if isinstance(policy, dict) else {}


def _queue_of(run_policy: Obj) -> Any:
    scheduling = run_policy.get("schedulingPolicy")
    return scheduling.get("queue") if isinstance(scheduling, dict) else None


def _is_running(job: Obj) -> bool:
    """The job has a ``Running`` condition with status ``"True"``."""
    status = job.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    if not isinstance(conditions, list):
        return False
    return any(
        isinstance(c, dict) and c.get("type") == "Running" and c.get("status") == "True"
        for c in conditions
    )


def validate_update(kind: JobKind, old: Obj, new: Obj) -> list[FieldError]:
    """``transition_errors(old, new)`` first, then ``validate(new)``. Never raises."""
    return transition_errors(old, new) + validate(kind, new)


def transition_errors(old: Obj, new: Obj) -> list[FieldError]:
    """The update rules alone: ``runPolicy.managedBy`` is immutable; a
    ``runPolicy.schedulingPolicy.queue`` that is set may not change or go while ``old`` runs (a
    Running condition with status True, and ``runPolicy.suspend`` not true); setting one where
    there was none is allowed, as the CRD's CEL rule allows it. Never raises."""
    errs: list[FieldError] = []
    old_policy, new_policy = _run_policy_of(old), _run_policy_of(new)
    new_managed_by = new_policy.get("managedBy")
    if old_policy.get("managedBy") != new_managed_by:
        errs.append(
            FieldError(
                INVALID,
                "spec.runPolicy.managedBy",
                shown_value(new_managed_by),
                "field is immutable",
            )
        )
    old_queue, new_queue = _queue_of(old_policy), _queue_of(new_policy)
    if (
        old_queue is not None
        and old_queue != new_queue
        and _is_running(old)
        and old_policy.get("suspend") is not True
    ):
        errs.append(
            FieldError(
                INVALID,
                "spec.runPolicy.schedulingPolicy.queue",
                shown_value(new_queue),
                "field is immutable while the job is running; suspend the job to change its queue",
            )
        )
    return errs


def warnings(kind: JobKind, job: Obj) -> list[str]:
    """Admission warnings (not errors): PyTorchJob's deprecated ``elasticPolicy.nProcPerNode``."""
    if kind is not PYTORCHJOB:
        return []
    spec = job.get("spec")
    elastic = spec.get("elasticPolicy") if isinstance(spec, dict) else None
    if isinstance(elastic, dict) and elastic.get("nProcPerNode") is not None:
        return ["spec.elasticPolicy.nProcPerNode is deprecated, use spec.nprocPerNode instead"]
    return []


__all__ = [
    "CLEAN_POD_POLICY_VALUES",
    "DUPLICATE",
    "FORBIDDEN",
    "INVALID",
    "MANAGED_BY_VALUES",
    "NOT_SUPPORTED",
    "REQUIRED",
    "RESTART_POLICY_VALUES",
    "FieldError",
    "aggregate_message",
    "is_json_integer",
    "read_integer",
    "read_object",
    "read_string",
    "shown_value",
    "supported_values",
    "transition_errors",
    "validate",
    "validate_name",
    "validate_update",
    "warnings",
    "wrong_type",
]
