"""batch/v1 Job validation: the 422s a client gets from a real kube-apiserver for a bad Job.

Read from kubernetes v1.36's ``pkg/apis/batch/validation/validation.go`` (``ValidateJob``,
``validateJobSpec``, ``validatePodFailurePolicy*``, ``validateSuccessPolicy*``,
``ValidateJobSpecUpdate``, ``validateJobStatus``/``ValidateJobStatusUpdate``) with the options
``pkg/registry/batch/job/strategy.go`` passes: the generated labels, both prefixed and legacy,
are required on create (and on update when the old template had the prefixed ones); the
template may change only in its scheduling directives (node affinity and selector,
tolerations, labels, annotations, scheduling gates) and only while the Job is suspended and
never started; completions may change only for an Indexed Job, together with parallelism.

Field paths and messages are kube's (``field.Error``): ``spec.completions: Required value: when
completion mode is Indexed``. Values of structs and maps print as JSON, as in ``workloads.py``.
Of the pod template only what a Job adds is checked (containers present, restartPolicy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ._kubetext import go_quote, is_dns1123_label, typed_value
from .jobs import (
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    generate_selector,
)
from .selectors import SelectorError, label_selector_from_dict

__all__ = ["job_causes", "parse_indexes"]

Cause = dict[str, str]
_MAX_PARALLELISM_INDEXED = 100_000
_MAX_FAILED_INDEXES = 100_000
_COMPLETIONS_SOFT_LIMIT = 100_000
_PARALLELISM_HIGH_COMPLETIONS = 10_000
_MAX_FAILED_HIGH_COMPLETIONS = 10_000
_MAX_POLICY_RULES = 20
_MAX_EXIT_CODE_VALUES = 255
_MAX_CONDITION_PATTERNS = 20
_MAX_MANAGED_BY = 63
_MAX_SUCCEEDED_INDEXES_LEN = 64 * 1024
_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
_OPERATORS = ("In", "NotIn")
_CONDITION_STATUSES = ("False", "True", "Unknown")


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {typed_value(value)}: {detail}",
        "field": field,
    }


def _required(field: str, detail: str = "") -> Cause:
    message = f"Required value: {detail}" if detail else "Required value"
    return {"reason": "FieldValueRequired", "message": message, "field": field}


def _not_supported(field: str, value: Any, supported: tuple[str, ...]) -> Cause:
    valid = ", ".join(go_quote(s) for s in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f"Unsupported value: {typed_value(value)}: supported values: {valid}",
        "field": field,
    }


def _too_many(field: str, actual: int, limit: int) -> Cause:
    return {
        "reason": "FieldValueTooMany",
        "message": f"Too many: {actual}: must have at most {limit} items",
        "field": field,
    }


def _nonnegative(spec: Mapping[str, Any], name: str, causes: list[Cause]) -> None:
    value = spec.get(name)
    if isinstance(value, int) and value < 0:
        causes.append(_invalid(f"spec.{name}", value, "must be greater than or equal to 0"))


# -- indexes ("1,3-5") ------------------------------------------------------------------------


def parse_indexes(text: str, completions: int) -> tuple[list[tuple[int, int]], str | None]:
    """Ordered intervals of ``text`` and the error kube's ``validateIndexesFormat`` reports
    (None when valid): non-decreasing, non-overlapping, each index below ``completions``."""
    out: list[tuple[int, int]] = []
    if text == "":
        return out, None
    previous = -1
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2:
            return (
                out,
                f"the fragment \"{part}\" violates the requirement that an index interval can have at most two parts separated by '-'",
            )
        try:
            first = int(bounds[0])
            last = int(bounds[1]) if len(bounds) == 2 else first
        except ValueError as exc:
            return out, f"cannot convert string to integer for index: {exc}"
        if first < 0 or last < first:
            return (
                out,
                f'the fragment "{part}" violates the requirement that the first index is not greater than the last',
            )
        if last >= completions:
            return out, f"too large index: {last}"
        if first <= previous:
            return out, f"non-increasing order, previous: {previous}, current: {first}"
        out.append((first, last))
        previous = last
    return out, None


# -- spec -------------------------------------------------------------------------------------


def _selector_causes(job: Mapping[str, Any], *, prefixed: bool) -> list[Cause]:
    """``validateGeneratedSelector``: the labels the selector generation put in place."""
    spec = job.get("spec") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = job.get("metadata") or {}
    name, uid = str(meta.get("name") or ""), str(meta.get("uid") or "")
    causes: list[Cause] = []
    if not uid:
        causes.append(_required("metadata.uid"))
    template_meta = (spec.get("template") or {}).get("metadata") or {}
    labels = template_meta.get("labels") or {}
    wanted = [(LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name)]
    if prefixed:
        wanted += [(CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)]
    for key, expected in wanted:
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            causes.append(_required(path, expected))
        elif labels[key] != expected:
            causes.append(_invalid(path, labels, f"must be '{expected}'"))
    try:
        selector = label_selector_from_dict(spec.get("selector"))
    except SelectorError:
        return causes
    if not selector.matches(dict(wanted)):
        causes.append(
            _invalid("spec.selector", spec.get("selector"), "`selector` not auto-generated")
        )
    return causes


def _exit_codes_causes(req: Mapping[str, Any], path: str, names: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    operator = req.get("operator")
    if not operator:
        causes.append(_required(f"{path}.operator", "valid values: " + _quoted_list(_OPERATORS)))
    elif operator not in _OPERATORS:
        causes.append(_not_supported(f"{path}.operator", operator, _OPERATORS))
    container = req.get("containerName")
    if container is not None and container not in names:
        causes.append(
            _invalid(
                f"{path}.containerName",
                container,
                "must be one of the container or initContainer names in the pod template",
            )
        )
    values = list(req.get("values") or [])
    if not values:
        causes.append(_invalid(f"{path}.values", values, "at least one value is required"))
    elif len(values) > _MAX_EXIT_CODE_VALUES:
        causes.append(_too_many(f"{path}.values", len(values), _MAX_EXIT_CODE_VALUES))
    seen: set[int] = set()
    for j, value in enumerate(values):
        if operator == "In" and value == 0:
            causes.append(_invalid(f"{path}.values[{j}]", 0, "must not be 0 for the In operator"))
        if value in seen:
            causes.append(
                {
                    "reason": "FieldValueDuplicate",
                    "message": f"Duplicate value: {value}",
                    "field": f"{path}.values[{j}]",
                }
            )
        seen.add(value)
    if any(values[j - 1] > values[j] for j in range(1, len(values))):
        causes.append(_invalid(f"{path}.values", values, "must be ordered"))
    return causes


def _quoted_list(values: tuple[str, ...]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def _pod_failure_policy_causes(spec: Mapping[str, Any]) -> list[Cause]:
    policy = spec.get("podFailurePolicy") or {}
    rules = list(policy.get("rules") or [])
    causes: list[Cause] = []
    if len(rules) > _MAX_POLICY_RULES:
        causes.append(_too_many("spec.podFailurePolicy.rules", len(rules), _MAX_POLICY_RULES))
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    names = {
        str(c.get("name"))
        for key in ("containers", "initContainers")
        for c in pod_spec.get(key) or ()
        if isinstance(c, Mapping)
    }
    for i, rule in enumerate(rules):
        path = f"spec.podFailurePolicy.rules[{i}]"
        action = rule.get("action")
        if not action:
            causes.append(_required(f"{path}.action", "valid values: " + _quoted_list(_ACTIONS)))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                causes.append(
                    _invalid(
                        f"{path}.action", action, "requires the backoffLimitPerIndex to be set"
                    )
                )
        elif action not in _ACTIONS:
            causes.append(_not_supported(f"{path}.action", action, _ACTIONS))
        on_codes = rule.get("onExitCodes")
        on_conditions = list(rule.get("onPodConditions") or [])
        if on_codes is not None:
            causes.extend(_exit_codes_causes(on_codes, f"{path}.onExitCodes", names))
        if len(on_conditions) > _MAX_CONDITION_PATTERNS:
            causes.append(
                _too_many(f"{path}.onPodConditions", len(on_conditions), _MAX_CONDITION_PATTERNS)
            )
        for j, pattern in enumerate(on_conditions):
            status = pattern.get("status")
            status_path = f"{path}.onPodConditions[{j}].status"
            if not status:
                causes.append(
                    _required(status_path, "valid values: " + _quoted_list(_CONDITION_STATUSES))
                )
            elif status not in _CONDITION_STATUSES:
                causes.append(_not_supported(status_path, status, _CONDITION_STATUSES))
        if on_codes is not None and on_conditions:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported",
                    "field": path,
                }
            )
        if on_codes is None and not on_conditions:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
                    "field": path,
                }
            )
    return causes


def _success_policy_causes(spec: Mapping[str, Any]) -> list[Cause]:
    policy = spec.get("successPolicy") or {}
    if spec.get("completionMode") != "Indexed":
        return [_invalid("spec.successPolicy", policy, "requires indexed completion mode")]
    rules = list(policy.get("rules") or [])
    causes: list[Cause] = []
    if not rules:
        causes.append(
            _required(
                "spec.successPolicy.rules",
                "at least one rules must be specified when the successPolicy is specified",
            )
        )
    if len(rules) > 20:
        causes.append(_too_many("spec.successPolicy.rules", len(rules), 20))
    completions = int(spec.get("completions") or 0)
    for i, rule in enumerate(rules):
        path = f"spec.successPolicy.rules[{i}]"
        indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if indexes is None and count is None:
            causes.append(
                _required(
                    path, "at least one of succeededCount or succeededIndexes must be specified"
                )
            )
        total = 0
        if indexes is not None:
            if len(indexes) > _MAX_SUCCEEDED_INDEXES_LEN:
                causes.append(
                    {
                        "reason": "FieldValueTooLong",
                        "message": f"Too long: may not be more than {_MAX_SUCCEEDED_INDEXES_LEN} bytes",
                        "field": f"{path}.succeededIndexes",
                    }
                )
            intervals, err = parse_indexes(indexes, completions)
            if err is not None:
                causes.append(
                    _invalid(
                        f"{path}.succeededIndexes",
                        indexes,
                        f"error parsing succeededIndexes: {err}",
                    )
                )
            total = sum(b - a + 1 for a, b in intervals)
        if count is not None:
            if count < 0:
                causes.append(
                    _invalid(f"{path}.succeededCount", count, "must be greater than or equal to 0")
                )
            if count > completions:
                causes.append(
                    _invalid(
                        f"{path}.succeededCount",
                        count,
                        f"must be less than or equal to {completions} (the number of specified completions)",
                    )
                )
            if indexes is not None and count > total:
                causes.append(
                    _invalid(
                        f"{path}.succeededCount",
                        count,
                        f"must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)",
                    )
                )
    return causes


def _spec_causes(spec: Mapping[str, Any]) -> list[Cause]:
    """``validateJobSpec`` + ``ValidateJobSpec``'s selector checks."""
    causes: list[Cause] = []
    for name in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ):
        _nonnegative(spec, name, causes)
    per_index, max_failed = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if max_failed is not None and per_index is None:
        causes.append(_required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    managed_by = spec.get("managedBy")
    if managed_by is not None:
        causes.extend(_managed_by_causes(str(managed_by)))
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        causes.append(_not_supported("spec.completionMode", mode, ("NonIndexed", "Indexed")))
    if mode == "Indexed":
        if completions is None:
            causes.append(_required("spec.completions", "when completion mode is Indexed"))
        if isinstance(parallelism, int) and parallelism > _MAX_PARALLELISM_INDEXED:
            causes.append(
                _invalid(
                    "spec.parallelism",
                    parallelism,
                    f"must be less than or equal to {_MAX_PARALLELISM_INDEXED} when completion mode is Indexed",
                )
            )
        if (
            isinstance(completions, int)
            and isinstance(max_failed, int)
            and max_failed > completions
        ):
            causes.append(
                _invalid(
                    "spec.maxFailedIndexes", max_failed, "must be less than or equal to completions"
                )
            )
        if isinstance(max_failed, int) and max_failed > _MAX_FAILED_INDEXES:
            causes.append(
                _invalid(
                    "spec.maxFailedIndexes",
                    max_failed,
                    f"must be less than or equal to {_MAX_FAILED_INDEXES}",
                )
            )
        if (
            isinstance(completions, int)
            and completions > _COMPLETIONS_SOFT_LIMIT
            and per_index is not None
        ):
            if max_failed is None:
                causes.append(
                    _required(
                        "spec.maxFailedIndexes",
                        f"must be specified when completions is above {_COMPLETIONS_SOFT_LIMIT}",
                    )
                )
            suffix = f"when completions are above {_COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
            if isinstance(parallelism, int) and parallelism > _PARALLELISM_HIGH_COMPLETIONS:
                causes.append(
                    _invalid(
                        "spec.parallelism",
                        parallelism,
                        f"must be less than or equal to {_PARALLELISM_HIGH_COMPLETIONS} {suffix}",
                    )
                )
            if isinstance(max_failed, int) and max_failed > _MAX_FAILED_HIGH_COMPLETIONS:
                causes.append(
                    _invalid(
                        "spec.maxFailedIndexes",
                        max_failed,
                        f"must be less than or equal to {_MAX_FAILED_HIGH_COMPLETIONS} {suffix}",
                    )
                )
    else:
        if per_index is not None:
            causes.append(
                _invalid("spec.backoffLimitPerIndex", per_index, "requires indexed completion mode")
            )
        if max_failed is not None:
            causes.append(
                _invalid("spec.maxFailedIndexes", max_failed, "requires indexed completion mode")
            )
    if spec.get("podFailurePolicy") is not None:
        causes.extend(_pod_failure_policy_causes(spec))
    if spec.get("successPolicy") is not None:
        causes.extend(_success_policy_causes(spec))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                causes.append(_not_supported("spec.podReplacementPolicy", replacement, ("Failed",)))
        elif replacement not in ("Failed", "TerminatingOrFailed"):
            causes.append(
                _not_supported(
                    "spec.podReplacementPolicy", replacement, ("Failed", "TerminatingOrFailed")
                )
            )
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    if not pod_spec.get("containers"):
        causes.append(_required("spec.template.spec.containers"))
    restart = pod_spec.get("restartPolicy") or ""
    if restart in ("Always", ""):
        causes.append(
            _required("spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"')
        )
    elif restart not in ("OnFailure", "Never"):
        causes.append(
            _not_supported("spec.template.spec.restartPolicy", restart, ("OnFailure", "Never"))
        )
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        causes.append(
            _invalid(
                "spec.template.spec.restartPolicy",
                restart,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    raw_selector = spec.get("selector")
    if raw_selector is None:
        causes.append(_required("spec.selector"))
        return causes
    try:
        selector = label_selector_from_dict(raw_selector)
    except SelectorError as exc:
        causes.append(_invalid("spec.selector", raw_selector, str(exc)))
        return causes
    labels = (template.get("metadata") or {}).get("labels")
    if not selector.matches(labels if isinstance(labels, Mapping) else None):
        causes.append(
            _invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    return causes


def _managed_by_causes(value: str) -> list[Cause]:
    """``IsDomainPrefixedPath`` and the 63-character limit of ``spec.managedBy``."""
    causes: list[Cause] = []
    domain, sep, path = value.partition("/")
    if not sep or not path:
        causes.append(
            _invalid(
                "spec.managedBy", value, 'must be a domain-prefixed path (such as "acme.io/foo")'
            )
        )
    elif is_dns1123_label(domain.split(".")[0]) or any(
        is_dns1123_label(p) for p in domain.split(".")
    ):
        causes.append(_invalid("spec.managedBy", value, "must be a valid domain"))
    if len(value) > _MAX_MANAGED_BY:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: may not be more than {_MAX_MANAGED_BY} bytes",
                "field": "spec.managedBy",
            }
        )
    return causes


def _job_causes(job: Mapping[str, Any], *, prefixed: bool) -> list[Cause]:
    """``ValidateJob``: the generated selector, the spec, the longest Indexed hostname."""
    spec = job.get("spec") or {}
    causes = _selector_causes(job, prefixed=prefixed) + _spec_causes(spec)
    completions = spec.get("completions")
    name = str((job.get("metadata") or {}).get("name") or "")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        hostname = f"{name}-{completions - 1}"
        if is_dns1123_label(hostname):
            causes.append(
                _invalid(
                    "metadata.name",
                    name,
                    f"will not able to create pod with invalid DNS label: {hostname}",
                )
            )
    return causes


# -- update -----------------------------------------------------------------------------------

_SCHEDULING_SPEC_FIELDS = ("nodeSelector", "tolerations", "schedulingGates")


def _template_for_comparison(template: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``validatePodTemplateUpdate`` with mutable scheduling directives: ``template`` (the old
    one) with the fields that may change taken from ``new``."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(template))
    new_spec = new.get("spec") or {}
    meta = out.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        if key in (new.get("metadata") or {}):
            meta[key] = new["metadata"][key]
        else:
            meta.pop(key, None)
    spec = out.setdefault("spec", {})
    for key in _SCHEDULING_SPEC_FIELDS:
        if key in new_spec:
            spec[key] = new_spec[key]
        else:
            spec.pop(key, None)
    affinity = dict(spec.get("affinity") or {})
    new_affinity = new_spec.get("affinity")
    affinity.pop("nodeAffinity", None)
    if isinstance(new_affinity, Mapping) and "nodeAffinity" in new_affinity:
        affinity["nodeAffinity"] = new_affinity["nodeAffinity"]
    if affinity or new_affinity is not None:
        spec["affinity"] = affinity
    else:
        spec.pop("affinity", None)
    return out


def _immutable(field: str, new: Any, old: Any, causes: list[Cause]) -> None:
    if new != old:
        causes.append(_invalid(field, new, "field is immutable"))


def _update_causes(job: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    spec, old_spec = job.get("spec") or {}, old.get("spec") or {}
    causes: list[Cause] = []
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        _immutable("spec.completions", completions, old_completions, causes)
    elif (
        completions != old_completions
        and completions is not None
        and completions != spec.get("parallelism")
    ):
        causes.append(
            _invalid(
                "spec.completions",
                completions,
                "can only be modified in tandem with spec.parallelism",
            )
        )
    _immutable("spec.selector", spec.get("selector"), old_spec.get("selector"), causes)
    template, old_template = spec.get("template") or {}, old_spec.get("template") or {}
    suspended = old_spec.get("suspend") is True
    not_started = not (old.get("status") or {}).get("startTime")
    if suspended and not_started:
        # kube v1.36 then compares the pod spec alone, and names spec.template.spec
        old_template = _template_for_comparison(old_template, template)
        _immutable("spec.template.spec", template.get("spec"), old_template.get("spec"), causes)
        template = {**template, "spec": old_template.get("spec")}
    _immutable("spec.template", template, old_template, causes)
    for name in (
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ):
        _immutable(f"spec.{name}", spec.get(name), old_spec.get(name), causes)
    return causes


# -- status -----------------------------------------------------------------------------------


def _true(status: Mapping[str, Any], ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def _conditions_cause(detail: str) -> Cause:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {detail}",
        "field": "status.conditions",
    }


def _status_causes(job: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    """The common part of ``validateJobStatus`` and ``ValidateJobStatusUpdate``."""
    status, old_status = job.get("status") or {}, old.get("status") or {}
    causes: list[Cause] = []
    for name in ("active", "succeeded", "failed", "ready", "terminating"):
        value = status.get(name)
        if isinstance(value, int) and value < 0:
            causes.append(_invalid(f"status.{name}", value, "must be greater than or equal to 0"))
    complete, failed = _true(status, "Complete"), _true(status, "Failed")
    if complete and failed:
        causes.append(_conditions_cause("cannot set Complete=True and Failed=true conditions"))
    if status.get("completionTime") and not complete:
        causes.append(
            _invalid(
                "status.completionTime",
                status["completionTime"],
                "cannot set completionTime when there is no Complete=True condition",
            )
        )
    for ctype in ("Failed", "Complete", "FailureTarget"):
        if _true(old_status, ctype) and not _true(status, ctype):
            causes.append(_conditions_cause(f"cannot disable the terminal {ctype}=True condition"))
    for name in ("failed", "succeeded"):
        if int(status.get(name) or 0) < int(old_status.get(name) or 0):
            causes.append(
                _invalid(
                    f"status.{name}",
                    int(status.get(name) or 0),
                    f"cannot decrease the {name} counter",
                )
            )
    return causes


# -- entry point ------------------------------------------------------------------------------


def job_causes(
    job: dict[str, Any], old: Mapping[str, Any] | None, *, subresource: str = ""
) -> list[Cause]:
    """StatusCauses of a Job write; [] when valid. On create (``old`` None) it first
    generates the selector and labels (in place: the strategy's ``PrepareForCreate``, after
    the mutating admission)."""
    if old is None:
        generate_selector(job)
        return _job_causes(job, prefixed=True)
    if subresource == "status":
        return _status_causes(job, old)
    old_labels = ((old.get("spec") or {}).get("template") or {}).get("metadata") or {}
    had = old_labels.get("labels") or {}
    prefixed = JOB_NAME_LABEL in had and CONTROLLER_UID_LABEL in had
    return _job_causes(job, prefixed=prefixed) + _update_causes(job, old)
