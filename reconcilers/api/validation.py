"""The validating-webhook rules of the reference (section 4), per kind, as field errors.

Used twice: by the admission webhook (on the object as submitted) and by the controller (on the
*defaulted* object, before it creates anything). Errors print like Kubernetes' ``field.Error``
(``spec.pytorchReplicaSpecs[Master].replicas: Forbidden: must be 1``; map keys in brackets, as
``field.Path.Key`` renders them), so clients see the reference's messages.

Decisions (reference section 10):
- MPIJob has no webhook in the reference, only controller-side checks; kubetrain applies the MPI
  rules (section 4) both at admission and in the controller, plus the ``managedBy`` rule.
- Quirk 4 fixed: ``managedBy`` immutability compares old with new (``validate_update``) for
  every kind, and JAXJob validates ``managedBy`` like the others.
- Quirk 6 kept: ``Master.replicas`` must be exactly 1 and nil is rejected at admission, as in the
  reference (existing manifests are judged the same way). The controller validates *after*
  defaulting (nil -> 1), so a job admitted without a webhook and an unset Master replicas runs.
- Quirk 5 kept: TFJob accepts any replica type key (the controller camel-cases known ones).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import MPIJOB, PYTORCHJOB, TFJOB, XGBOOSTJOB, JobKind

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

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


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

    def __str__(self) -> str:
        body = _TYPE_TEXT[self.type]
        if self.type not in _NO_VALUE_TYPES:
            body = f"{body}: {_go_value(self.bad_value)}"
        if self.detail:
            body = f"{body}: {self.detail}"
        return f"{self.field}: {body}"


def aggregate_message(errors: list[FieldError]) -> str:
    """The errors as one message, as ``ErrorList.ToAggregate().Error()`` prints them."""
    if len(errors) == 1:
        return str(errors[0])
    return "[" + ", ".join(str(e) for e in errors) + "]"


def _supported(values: tuple[str, ...]) -> str:
    return "supported values: " + ", ".join(json.dumps(v) for v in values)


def validate_name(name: str) -> list[FieldError]:
    """``metadata.name`` must be a DNS-1035 label (pod and service names derive from it)."""
    problems: list[str] = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1035.match(name):
        problems.append(_DNS1035_MSG)
    if not problems:
        return []
    return [FieldError(INVALID, "metadata.name", name, "should match: " + ",".join(problems))]


def _validate_run_policy(spec: Obj) -> list[FieldError]:
    managed = (spec.get("runPolicy") or {}).get("managedBy")
    if managed is not None and managed not in MANAGED_BY_VALUES:
        return [
            FieldError(
                NOT_SUPPORTED, "spec.runPolicy.managedBy", managed, _supported(MANAGED_BY_VALUES)
            )
        ]
    return []


def _validate_replica_specs(kind: JobKind, specs: Obj | None, *, mpi: bool) -> list[FieldError]:
    path = f"spec.{kind.replica_field}"
    if specs is None:
        return [FieldError(REQUIRED, path, detail="must be required")]
    errs: list[FieldError] = []
    for rtype, rspec in specs.items():
        role = f"{path}[{rtype}]"
        containers_path = f"{role}.template.spec.containers"
        if kind is not TFJOB and rtype not in kind.replica_types:  # quirk 5 kept for TF
            errs.append(FieldError(NOT_SUPPORTED, role, rtype, _supported(kind.replica_types)))
        containers: list[Obj] = []
        if isinstance(rspec, dict):
            containers = (rspec.get("template") or {}).get("spec", {}).get("containers") or []
        if not containers:
            errs.append(FieldError(REQUIRED, containers_path, detail="must be specified"))
        has_default = False
        for i, c in enumerate(containers):
            if not c.get("image"):
                errs.append(
                    FieldError(REQUIRED, f"{containers_path}[{i}].image", detail="must be required")
                )
            if mpi and not c.get("name"):
                errs.append(
                    FieldError(REQUIRED, f"{containers_path}[{i}].name", detail="must be required")
                )
            if c.get("name") == kind.default_container:
                has_default = True
        if not mpi and not has_default:
            errs.append(
                FieldError(
                    REQUIRED,
                    containers_path,
                    detail=f"must have at least one container with name {kind.default_container}",
                )
            )
    return errs


def _replicas(specs: Obj, rtype: str) -> Any:
    rspec = specs.get(rtype)
    return rspec.get("replicas") if isinstance(rspec, dict) else None


def _kind_rules(kind: JobKind, spec: Obj, specs: Obj) -> list[FieldError]:
    path = f"spec.{kind.replica_field}"
    errs: list[FieldError] = []
    if kind is TFJOB and sum(1 for t in specs if t in ("Chief", "Master")) > 1:
        errs.append(
            FieldError(FORBIDDEN, path, detail="must not have more than 1 Chief or Master role")
        )
    master_counts = kind in (PYTORCHJOB, XGBOOSTJOB) and "Master" in specs
    if master_counts and _replicas(specs, "Master") != 1:
        errs.append(FieldError(FORBIDDEN, f"{path}[Master].replicas", detail="must be 1"))
    if kind is PYTORCHJOB:
        worker = _replicas(specs, "Worker")
        if worker is not None and worker < 1:
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
            launcher = _replicas(specs, "Launcher")
            if launcher is not None and launcher != 1:
                errs.append(FieldError(FORBIDDEN, f"{path}[Launcher].replicas", detail="must be 1"))
    return errs


def validate(kind: JobKind, job: Obj) -> list[FieldError]:
    """All rule violations of ``job`` (a create, or the new object of an update); [] if valid."""
    errs = validate_name(job.get("metadata", {}).get("name", ""))
    spec: Obj = job.get("spec") or {}
    errs += _validate_run_policy(spec)
    specs = spec.get(kind.replica_field)
    errs += _validate_replica_specs(kind, specs, mpi=kind is MPIJOB)
    if isinstance(specs, dict):
        errs += _kind_rules(kind, spec, specs)
    return errs


def validate_update(kind: JobKind, old: Obj, new: Obj) -> list[FieldError]:
    """``validate(new)`` plus the update rules: ``runPolicy.managedBy`` is immutable."""
    errs = validate(kind, new)
    old_mb = ((old.get("spec") or {}).get("runPolicy") or {}).get("managedBy")
    new_mb = ((new.get("spec") or {}).get("runPolicy") or {}).get("managedBy")
    if old_mb != new_mb:
        errs.insert(
            0, FieldError(INVALID, "spec.runPolicy.managedBy", new_mb, "field is immutable")
        )
    return errs


def warnings(kind: JobKind, job: Obj) -> list[str]:
    """Admission warnings (not errors): PyTorchJob's deprecated ``elasticPolicy.nProcPerNode``."""
    if kind is not PYTORCHJOB:
        return []
    elastic = (job.get("spec") or {}).get("elasticPolicy")
    if isinstance(elastic, dict) and elastic.get("nProcPerNode") is not None:
        return ["spec.elasticPolicy.nProcPerNode is deprecated, use spec.nprocPerNode instead"]
    return []


__all__ = [
    "DUPLICATE",
    "FORBIDDEN",
    "INVALID",
    "NOT_SUPPORTED",
    "REQUIRED",
    "FieldError",
    "aggregate_message",
    "validate",
    "validate_name",
    "validate_update",
    "warnings",
]
