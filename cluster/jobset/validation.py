"""JobSet's validating webhook (``pkg/webhooks/jobset_webhook.go`` ``ValidateCreate``,
``ValidateUpdate``) and the CRD's CEL rules, as the 422 causes a client gets.

Webhook causes are ``field.Error``s: ``field.Invalid`` for the name and subdomain checks, and
``field.InternalError(nil, err)`` (field ``<nil>``, ``Internal error: ...``) for every plain
``fmt.Errorf`` of the webhook, as its ``toFieldErrorList`` wraps them. CEL causes are what
kube-apiserver v1.36 reports for the CRD's ``x-kubernetes-validations`` (``Invalid value:
Value is immutable``, checked on the conformance plane); they are checked before the webhook, as the server validates the schema
before calling validating webhooks. Feature gates are v0.12's defaults: InPlaceRestart,
RestartJob and ElasticJobSet off. Not checked: volumeClaimPolicies against existing PVCs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from kubetrain.cluster.apiserver._kubetext import (
    go_quote,
    is_dns1035_label,
    is_dns1123_subdomain,
    is_valid_label_value,
    regex_error,
    typed_value,
)

from .constants import (
    COORDINATOR_KEY,
    IN_ORDER,
    IN_PLACE_RESTART,
    RESTART_JOB,
    RESTART_JOB_IGNORE_MAX,
)
from .naming import coordinator_endpoint, job_name, pod_name

__all__ = ["cel_causes", "create_causes", "update_causes"]

Cause = dict[str, str]
Obj = Mapping[str, Any]
MAX_INT32 = 2**31 - 1
_MAX_MANAGED_BY = 63
_DNS1035_TOO_LONG = "must be no more than 63 characters"
_GROUP_NAME_TOO_LONG = (
    ".spec.replicatedJob[].groupName is too long, must be less than 63 characters"
)
_JOB_NAME_TOO_LONG = (
    "JobSet name is too long, job names generated for this JobSet will exceed 63 characters"
)
_POD_NAME_TOO_LONG = (
    "JobSet name is too long, pod names generated for this JobSet will exceed 63 characters"
)
_SUBDOMAIN_TOO_LONG = ".spec.network.subdomain is too long, must be less than 63 characters"
_VALID_FAILURE_REASONS = (
    "BackoffLimitExceeded",
    "DeadlineExceeded",
    "FailedIndexes",
    "MaxFailedIndexesExceeded",
    "PodFailurePolicy",
)
_RULE_NAME_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT)


def _typed(value: Any) -> str:
    """A typed value as JobSet's ``field.Error``s print it (JSON in the struct's order)."""
    return typed_value(value, sort_keys=False)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {_typed(value)}: {detail}",
        "field": field,
    }


def internal(message: str) -> Cause:
    """``field.InternalError(nil, err)``: a nil path prints as ``<nil>``."""
    return {"reason": "InternalError", "message": f"Internal error: {message}", "field": "<nil>"}


def _spec(js: Obj) -> Obj:
    spec = js.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _rjobs(js: Obj) -> list[Obj]:
    return [r for r in _spec(js).get("replicatedJobs") or () if isinstance(r, Mapping)]


def _job_spec(rjob: Obj) -> Obj:
    return ((rjob.get("template") or {}).get("spec")) or {}


def _dns1035(field: str, value: str, too_long: str) -> list[Cause]:
    return [
        invalid(field, value, too_long if _DNS1035_TOO_LONG in msg else msg)
        for msg in is_dns1035_label(value)
    ]


def _managed_by(manager: str) -> list[Cause]:
    """``IsDomainPrefixedPath`` and the 63-byte limit."""
    field = "spec.managedBy"
    causes: list[Cause] = []
    segments = manager.split("/", 1)
    if not manager:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field})
    elif len(segments) != 2 or not segments[0] or not segments[1]:
        causes.append(
            invalid(field, manager, 'must be a domain-prefixed path (such as "acme.io/foo")')
        )
    else:
        host, path = segments
        causes.extend(invalid(field, host, msg) for msg in is_dns1123_subdomain(host))
        if not _HTTP_PATH_RE.fullmatch(path):
            causes.append(invalid(field, path, regex_error("must be a valid path", _HTTP_PATH_FMT)))
    if len(manager) > _MAX_MANAGED_BY:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: may not be more than {_MAX_MANAGED_BY} bytes",
                "field": field,
            }
        )
    return causes


def _replicated_job_causes(js: Obj, index: int, rjob: Obj, seen: set[str]) -> list[Cause]:
    name = str(rjob.get("name") or "")
    path = f"spec.replicatedJobs[{index}]"
    replicas = int(rjob.get("replicas") or 0)
    job_spec = _job_spec(rjob)
    causes: list[Cause] = []
    parallelism = job_spec.get("parallelism")
    parallelism = 1 if parallelism is None else int(parallelism)
    if parallelism * replicas > MAX_INT32:
        causes.append(
            internal(
                f"the product of replicas and parallelism must not exceed {MAX_INT32} for "
                f"replicatedJob '{name}'"
            )
        )
    group = str(rjob.get("groupName") or "")
    causes.extend(_dns1035(f"{path}.groupName", group, _GROUP_NAME_TOO_LONG))
    js_name = str(js["metadata"].get("name") or "")
    longest_job = job_name(js_name, name, replicas - 1)
    causes.extend(_dns1035(f"{path}.name", longest_job, _JOB_NAME_TOO_LONG))
    completions = job_spec.get("completions")
    if job_spec.get("completionMode") == "Indexed" and completions is not None:
        longest_pod = pod_name(js_name, name, replicas - 1, int(completions) - 1) + "-abcde"
        causes.extend(
            invalid(
                f"{path}.name", longest_job, _POD_NAME_TOO_LONG if _DNS1035_TOO_LONG in m else m
            )
            for m in is_dns1035_label(longest_pod)
        )
    for dep in rjob.get("dependsOn") or ():
        dep_name = str((dep or {}).get("name") or "")
        if dep_name not in seen:
            causes.append(
                internal(f"replicatedJob: {name} cannot depend on replicatedJob: {dep_name}")
            )
    return causes


def _failure_policy_causes(policy: Obj, names: set[str], rjobs: list[Obj]) -> list[Cause]:
    rules = [r for r in policy.get("rules") or () if isinstance(r, Mapping)]
    if any(r.get("action") in (RESTART_JOB, RESTART_JOB_IGNORE_MAX) for r in rules):
        return [
            internal(
                "RestartJob and RestartJobAndIgnoreMaxRestarts failure policy actions are not "
                "allowed when RestartJob feature gate is disabled"
            )
        ]
    causes: list[Cause] = []
    by_name: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        rule_name = str(rule.get("name") or "")
        if not 1 <= len(rule_name) <= 128:
            causes.append(
                internal(
                    f"invalid failure policy rule name of length {len(rule_name)}, the rule name "
                    "must be at least 1 characters long and at most 128 characters long"
                )
            )
        by_name.setdefault(rule_name, []).append(index)
        if not _RULE_NAME_RE.match(rule_name):
            causes.append(
                internal(
                    f"invalid failure policy rule name '{rule_name}', a failure policy rule name "
                    "must start with an alphabetic character, optionally followed by a string of "
                    "alphanumeric characters or '_,:', and must end with an alphanumeric "
                    "character or '_'"
                )
            )
        for target in rule.get("targetReplicatedJobs") or ():
            if target not in names:
                causes.append(
                    internal(
                        f"invalid replicatedJob name '{target}' in failure policy does not "
                        "appear in .spec.ReplicatedJobs"
                    )
                )
        for reason in rule.get("onJobFailureReasons") or ():
            if reason not in _VALID_FAILURE_REASONS:
                causes.append(
                    internal(
                        f"invalid job failure reason '{reason}' in failure policy is not a "
                        "recognized job failure reason"
                    )
                )
    for rule_name, indices in by_name.items():  # Go ranges a map: any order
        if len(indices) > 1:
            joined = " ".join(str(i) for i in indices)
            causes.append(
                internal(
                    f"rule names are not unique, rules with indices [{joined}] all have the "
                    f"same name '{rule_name}'"
                )
            )
    return causes


def _coordinator_causes(js: Obj, coordinator: Obj) -> list[Cause]:
    causes: list[Cause] = []
    target = str(coordinator.get("replicatedJob") or "")
    job_index = int(coordinator.get("jobIndex") or 0)
    pod_index = int(coordinator.get("podIndex") or 0)
    rjob = next((r for r in _rjobs(js) if r.get("name") == target), None)
    job_spec = _job_spec(rjob) if rjob is not None else {}
    completions = job_spec.get("completions")
    if rjob is None:
        causes.append(internal(f"coordinator replicatedJob {target} does not exist"))
    elif not 0 <= job_index < int(rjob.get("replicas") or 0):
        causes.append(
            internal(f"coordinator job index {job_index} is invalid for replicatedJob {target}")
        )
    elif job_spec.get("completionMode") != "Indexed" or completions is None:
        causes.append(
            internal(
                "job for coordinator pod must be indexed completion mode, and completions "
                "number must be set"
            )
        )
    elif not 0 <= pod_index < int(completions):
        causes.append(
            internal(
                f"coordinator pod index {pod_index} is invalid for replicatedJob {target} job "
                f"index {job_index}"
            )
        )
    value = coordinator_endpoint(js)
    problems = is_valid_label_value(value)
    if problems:
        causes.append(
            internal(
                f"spec will lead to invalid label value {go_quote(value)} for coordinator label "
                f'"{COORDINATOR_KEY}" (long JobSet / ReplicatedJob / SubDomain name?): '
                + ", ".join(problems)
            )
        )
    return causes


def create_causes(js: Obj) -> list[Cause]:
    """``ValidateCreate`` of a defaulted JobSet (volume claim PVC lookups left out)."""
    spec = _spec(js)
    causes: list[Cause] = []
    policy = spec.get("failurePolicy")
    if isinstance(policy, Mapping) and policy.get("restartStrategy") == IN_PLACE_RESTART:
        causes.append(
            internal(
                "InPlaceRestart restart strategy cannot be set when InPlaceRestart feature gate "
                "is disabled"
            )
        )
    rjobs = _rjobs(js)
    if rjobs and rjobs[0].get("dependsOn") is not None:
        causes.append(internal("DependsOn can't be set for the first ReplicatedJob"))
    subdomain = str((spec.get("network") or {}).get("subdomain") or "")
    if subdomain:
        field = "spec.network.subdomain"
        causes.extend(invalid(field, subdomain, m) for m in is_dns1123_subdomain(subdomain))
        causes.extend(_dns1035(field, subdomain, _SUBDOMAIN_TOO_LONG))
    if spec.get("managedBy") is not None:
        causes.extend(_managed_by(str(spec["managedBy"])))
    names: set[str] = set()
    for index, rjob in enumerate(rjobs):
        names.add(str(rjob.get("name") or ""))
        causes.extend(_replicated_job_causes(js, index, rjob, names))
    for target in (spec.get("successPolicy") or {}).get("targetReplicatedJobs") or ():
        if target not in names:
            causes.append(
                internal(
                    f"invalid replicatedJob name '{target}' does not appear in .spec.ReplicatedJobs"
                )
            )
    if isinstance(policy, Mapping):
        causes.extend(_failure_policy_causes(policy, names, rjobs))
    coordinator = spec.get("coordinator")
    if isinstance(coordinator, Mapping):
        causes.extend(_coordinator_causes(js, coordinator))
    return causes


_SUSPEND_MUTABLE_TEMPLATE = ("annotations", "labels")
_SUSPEND_MUTABLE_POD = ("nodeSelector", "tolerations", "schedulingGates")


def _munged(new_rjobs: list[Any], old_rjobs: list[Any], suspended: bool) -> list[Any]:
    """The new replicatedJobs with what may change while suspended taken from the old ones."""
    if not suspended:
        return new_rjobs
    old_by_name = {r.get("name"): r for r in old_rjobs if isinstance(r, Mapping)}
    out: list[Any] = []
    for rjob in new_rjobs:
        old = old_by_name.get(rjob.get("name")) if isinstance(rjob, Mapping) else None
        if old is None:
            out.append(rjob)
            continue
        copy = orjson.loads(orjson.dumps(rjob))
        pod = copy.setdefault("template", {}).setdefault("spec", {}).setdefault("template", {})
        old_pod = ((old.get("template") or {}).get("spec") or {}).get("template") or {}
        _take(
            pod.setdefault("metadata", {}), old_pod.get("metadata") or {}, _SUSPEND_MUTABLE_TEMPLATE
        )
        _take(pod.setdefault("spec", {}), old_pod.get("spec") or {}, _SUSPEND_MUTABLE_POD)
        out.append(copy)
    return out


def _take(target: dict[str, Any], source: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if source.get(key):
            target[key] = source[key]
        else:
            target.pop(key, None)


def _normal(value: Any) -> Any:
    """Go's decoded-struct view for DeepEqual: empty maps, lists and nulls are absent."""
    if isinstance(value, Mapping):
        items = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def update_causes(old: Obj, new: Obj) -> list[Cause]:
    """``ValidateUpdate``: replicatedJobs immutable but for the pod template's labels,
    annotations, nodeSelector, tolerations and schedulingGates while the old or the new JobSet
    is suspended; managedBy immutable."""
    old_spec, new_spec = _spec(old), _spec(new)
    suspended = bool(old_spec.get("suspend")) or bool(new_spec.get("suspend"))
    new_rjobs = list(new_spec.get("replicatedJobs") or [])
    old_rjobs = list(old_spec.get("replicatedJobs") or [])
    causes: list[Cause] = []
    if _normal(_munged(new_rjobs, old_rjobs, suspended)) != _normal(old_rjobs):
        causes.append(invalid("spec.replicatedJobs", new_rjobs, "field is immutable"))
    if new_spec.get("managedBy") != old_spec.get("managedBy"):
        causes.append(invalid("spec.managedBy", new_spec.get("managedBy"), "field is immutable"))
    return causes


_IMMUTABLE = ("failurePolicy", "network", "startupPolicy", "successPolicy", "volumeClaimPolicies")


def _cel(field: str, message: str) -> Cause:
    """A CEL rule's failure as kube-apiserver v1.36 words it (no value printed)."""
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {message}", "field": field}


def cel_causes(new: Obj, old: Obj | None) -> list[Cause]:
    """The CRD's ``x-kubernetes-validations``: InOrder startup excludes dependsOn; on update,
    the ``self == oldSelf`` transition rules (evaluated only where old and new both have the
    field)."""
    spec = _spec(new)
    causes: list[Cause] = []
    if (spec.get("startupPolicy") or {}).get("startupPolicyOrder") == IN_ORDER and any(
        "dependsOn" in r for r in _rjobs(new)
    ):
        causes.append(_cel("spec", "StartupPolicy and DependsOn APIs are mutually exclusive"))
    if old is None:
        return causes
    old_spec = _spec(old)
    for key in _IMMUTABLE:
        if key in spec and key in old_spec and spec[key] != old_spec[key]:
            causes.append(_cel(f"spec.{key}", "Value is immutable"))
    old_deps = {r.get("name"): r.get("dependsOn") for r in _rjobs(old) if "dependsOn" in r}
    for index, rjob in enumerate(_rjobs(new)):
        name = rjob.get("name")
        if "dependsOn" in rjob and name in old_deps and rjob["dependsOn"] != old_deps[name]:
            causes.append(_cel(f"spec.replicatedJobs[{index}].dependsOn", "Value is immutable"))
    return causes
