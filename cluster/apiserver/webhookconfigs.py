"""Defaults and validation of admissionregistration.k8s.io/v1 webhook configurations.

Why this exists: a Validating/MutatingWebhookConfiguration that kube-apiserver refuses must be
refused here too, with the same fields and messages, or a manifest that works on the embedded
cluster breaks on a real one (the conformance tier found ``sideEffects: Unknown`` accepted here
and refused there). What a real server stores must also read back the same: the v1 defaults are
filled in on every create and update.

Followed: ``pkg/apis/admissionregistration/v1/defaults.go`` and
``pkg/apis/admissionregistration/validation.ValidateValidatingWebhookConfiguration`` /
``ValidateMutatingWebhookConfiguration`` of kubernetes v1.36.3, error for error and in the same
order: per webhook its name (fully qualified, three segments), rules, failurePolicy,
matchPolicy, sideEffects (None or NoneOnDryRun; required in v1), timeoutSeconds (1..30),
namespaceSelector, objectSelector, reinvocationPolicy (mutating), clientConfig (exactly one of
url or service; url https, with a host and no user, fragment or query; service name, namespace,
port and path), then admissionReviewVersions, then unique webhook names. Not validated:
``matchConditions`` (CEL; the embedded server does not evaluate them either), and the
relaxations kube grants an update of an object stored before a rule existed (nothing invalid is
ever stored here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from ._kubetext import (
    go_quote,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    max_len_error,
    regex_error,
)

__all__ = [
    "default_mutating_webhook_configuration",
    "default_validating_webhook_configuration",
    "validate_mutating_webhook_configuration",
    "validate_validating_webhook_configuration",
]

Cause = dict[str, str]

#: The AdmissionReview versions kube accepts in ``admissionReviewVersions`` (one is required).
ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
_FAILURE_POLICIES = ("Fail", "Ignore")
_MATCH_POLICIES = ("Equivalent", "Exact")
_SIDE_EFFECTS = ("None", "NoneOnDryRun")
_REINVOCATION_POLICIES = ("IfNeeded", "Never")
_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_SCOPES = ("*", "Cluster", "Namespaced")
_URL_FORM = "; desired format: https://host[/path]"

_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)


# -- defaults -------------------------------------------------------------------------------------


def default_validating_webhook_configuration(obj: dict[str, Any]) -> None:
    """Fill the v1 defaults of every webhook of ``obj`` in place (kube's SetDefaults_*)."""
    _default(obj, mutating=False)


def default_mutating_webhook_configuration(obj: dict[str, Any]) -> None:
    """As ``default_validating_webhook_configuration``, plus ``reinvocationPolicy: Never``."""
    _default(obj, mutating=True)


def _default(obj: dict[str, Any], *, mutating: bool) -> None:
    hooks = obj.get("webhooks")
    if not isinstance(hooks, list):
        return
    for hook in hooks:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or ():
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        client = hook.get("clientConfig")
        service = client.get("service") if isinstance(client, dict) else None
        if isinstance(service, dict):
            service.setdefault("port", 443)


# -- validation -----------------------------------------------------------------------------------


def validate_validating_webhook_configuration(obj: Mapping[str, Any]) -> list[Cause]:
    """StatusCauses (``reason``, ``message``, ``field``) of an invalid configuration; [] if
    valid. Expects the defaults filled in (the server defaults before it validates)."""
    return _validate(obj, mutating=False)


def validate_mutating_webhook_configuration(obj: Mapping[str, Any]) -> list[Cause]:
    """As ``validate_validating_webhook_configuration``, plus ``reinvocationPolicy``."""
    return _validate(obj, mutating=True)


def _validate(obj: Mapping[str, Any], *, mutating: bool) -> list[Cause]:
    errs: list[Cause] = []
    hooks = obj.get("webhooks")
    seen_names: set[str] = set()
    for i, hook in enumerate(hooks if isinstance(hooks, list) else ()):
        path = f"webhooks[{i}]"
        if not isinstance(hook, Mapping):
            continue
        _validate_webhook(hook, path, errs, mutating=mutating)
        _validate_review_versions(hook.get("admissionReviewVersions"), path, errs)
        name = hook.get("name")
        if isinstance(name, str) and name:
            if name in seen_names:
                errs.append(_duplicate(f"{path}.name", name))
            seen_names.add(name)
    return errs


def _validate_webhook(
    hook: Mapping[str, Any], path: str, errs: list[Cause], *, mutating: bool
) -> None:
    _validate_fully_qualified_name(hook.get("name"), f"{path}.name", errs)
    rules = hook.get("rules")
    for j, rule in enumerate(rules if isinstance(rules, list) else ()):
        if isinstance(rule, Mapping):
            _validate_rule(rule, f"{path}.rules[{j}]", errs)
    _check_supported(hook, "failurePolicy", _FAILURE_POLICIES, path, errs)
    _check_supported(hook, "matchPolicy", _MATCH_POLICIES, path, errs)
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        errs.append(
            _required(f"{path}.sideEffects", f"must specify one of {', '.join(_SIDE_EFFECTS)}")
        )
    else:
        _check_supported(hook, "sideEffects", _SIDE_EFFECTS, path, errs)
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        errs.append(
            _invalid(
                f"{path}.timeoutSeconds",
                timeout,
                "the timeout value must be between 1 and 30 seconds",
            )
        )
    for selector_field in ("namespaceSelector", "objectSelector"):
        selector = hook.get(selector_field)
        if isinstance(selector, Mapping):
            _validate_label_selector(selector, f"{path}.{selector_field}", errs)
    if mutating:
        _check_supported(hook, "reinvocationPolicy", _REINVOCATION_POLICIES, path, errs)
    client = hook.get("clientConfig")
    _validate_client_config(
        client if isinstance(client, Mapping) else {}, f"{path}.clientConfig", errs
    )


def _validate_fully_qualified_name(name: Any, path: str, errs: list[Cause]) -> None:
    """apimachinery's ``IsFullyQualifiedName`` (no trailing-dot allowance in v1.36)."""
    if not isinstance(name, str) or not name:
        errs.append(_required(path))
        return
    problems = is_dns1123_subdomain(name)
    if problems:
        errs.append(_invalid(path, name, ",".join(problems)))
    elif len(name.split(".")) < 3:
        errs.append(
            _invalid(
                path, name, "should be a domain with at least three segments separated by dots"
            )
        )


def _validate_rule(rule: Mapping[str, Any], path: str, errs: list[Cause]) -> None:
    """kube's ``validateRuleWithOperations`` + ``validateRule`` (subresources allowed)."""
    operations = _required_list(rule, "operations", "operations", path, errs)
    for k, operation in enumerate(operations):
        if operation not in _OPERATIONS:
            errs.append(_not_supported(f"{path}.operations[{k}]", operation, _OPERATIONS))
    _required_list(rule, "apiGroups", "API groups", path, errs)
    versions = _required_list(rule, "apiVersions", "API versions", path, errs)
    for k, version in enumerate(versions):
        if not version:
            errs.append(_required(f"{path}.apiVersions[{k}]"))
    _validate_resources(_strings(rule.get("resources")), f"{path}.resources", errs)
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        errs.append(_not_supported(f"{path}.scope", scope, _SCOPES))


def _required_list(
    rule: Mapping[str, Any], key: str, what: str, path: str, errs: list[Cause]
) -> list[str]:
    """``rule[key]``: required, and a "*" in it must stand alone (kube's message names
    ``what``); the strings, for the caller's own checks."""
    values = _strings(rule.get(key))
    if not values:
        errs.append(_required(f"{path}.{key}"))
    if len(values) > 1 and "*" in values:
        errs.append(
            _invalid(f"{path}.{key}", values, f"if '*' is present, must not specify other {what}")
        )
    return values


def _validate_resources(resources: list[str], path: str, errs: list[Cause]) -> None:
    """kube's ``validateResources``: wildcards may not overlap what they already cover."""
    if not resources:
        errs.append(_required(path))
    wildcard_subresources_of: set[str] = set()  # x/*
    subresources_with_wildcard_resource: set[str] = set()  # */x
    double_wildcard = single_wildcard = resource_without_subresource = False
    for k, text in enumerate(resources):
        if not text:
            errs.append(_required(f"{path}[{k}]"))
            continue
        if text == "*/*":
            double_wildcard = True
        if text == "*":
            single_wildcard = True
        resource, slash, sub = text.partition("/")
        if not slash:
            resource_without_subresource = text != "*"
            continue
        if resource in wildcard_subresources_of:
            errs.append(
                _invalid(
                    f"{path}[{k}]", text, f"if '{resource}/*' is present, must not specify {text}"
                )
            )
        if sub in subresources_with_wildcard_resource:
            errs.append(
                _invalid(f"{path}[{k}]", text, f"if '*/{sub}' is present, must not specify {text}")
            )
        if sub == "*":
            wildcard_subresources_of.add(resource)
        if resource == "*":
            subresources_with_wildcard_resource.add(sub)
    if len(resources) > 1 and double_wildcard:
        errs.append(
            _invalid(path, resources, "if '*/*' is present, must not specify other resources")
        )
    if single_wildcard and resource_without_subresource:
        errs.append(
            _invalid(
                path,
                resources,
                "if '*' is present, must not specify other resources without subresources",
            )
        )


def _validate_label_selector(selector: Mapping[str, Any], path: str, errs: list[Cause]) -> None:
    """apimachinery's ``ValidateLabelSelector`` (label values in expressions checked too)."""
    expressions = selector.get("matchExpressions")
    for k, req in enumerate(expressions if isinstance(expressions, list) else ()):
        if not isinstance(req, Mapping):
            continue
        req_path = f"{path}.matchExpressions[{k}]"
        operator = req.get("operator")
        values = _strings(req.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    _required(
                        f"{req_path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    _forbidden(
                        f"{req_path}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(_invalid(f"{req_path}.operator", operator, "not a valid selector operator"))
        key = req.get("key")
        key = key if isinstance(key, str) else ""
        errs.extend(_invalid(f"{req_path}.key", key, msg) for msg in is_qualified_name(key))
        for n, value in enumerate(values):
            errs.extend(
                _invalid(f"{req_path}.values[{n}]", value, msg)
                for msg in is_valid_label_value(value)
            )
    labels = selector.get("matchLabels")
    for key, value in (labels if isinstance(labels, Mapping) else {}).items():
        errs.extend(_invalid(f"{path}.matchLabels", key, msg) for msg in is_qualified_name(key))
        text = value if isinstance(value, str) else ""
        errs.extend(
            _invalid(f"{path}.matchLabels", text, msg) for msg in is_valid_label_value(text)
        )


def _validate_client_config(client: Mapping[str, Any], path: str, errs: list[Cause]) -> None:
    url, service = client.get("url"), client.get("service")
    if (url is None) == (service is None):
        errs.append(_required(path, "exactly one of url or service is required"))
    elif url is not None:
        _validate_url(str(url), f"{path}.url", errs)
    elif isinstance(service, Mapping):
        _validate_service(service, f"{path}.service", errs)


def _validate_url(url: str, path: str, errs: list[Cause]) -> None:
    """apiserver's ``webhook.ValidateWebhookURL`` with https forced."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError as exc:
        errs.append(_required(path, f"url must be a valid URL: {exc}{_URL_FORM}"))
        return
    if parts.scheme != "https":
        errs.append(
            _invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM)
        )
    if not host:
        errs.append(_invalid(path, host, "host must be specified" + _URL_FORM))
    if "@" in parts.netloc:
        user = parts.netloc.rpartition("@")[0]
        errs.append(_invalid(path, user, "user information is not permitted in the URL"))
    if parts.fragment:
        errs.append(_invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        errs.append(_invalid(path, parts.query, "query parameters are not permitted in the URL"))


def _validate_service(service: Mapping[str, Any], path: str, errs: list[Cause]) -> None:
    """apiserver's ``webhook.ValidateWebhookService``, as kube v1.36.3 calls it: with the
    service's name and namespace swapped, so a missing namespace is reported at ``.name`` and a
    missing name at ``.namespace`` (a real server's wording, kept so clients see the same)."""
    if not service.get("namespace"):
        errs.append(_required(f"{path}.name"))
    if not service.get("name"):
        errs.append(_required(f"{path}.namespace"))
    port = service.get("port", 443)
    if isinstance(port, int) and not 1 <= port <= 65535:
        errs.append(
            _invalid(
                f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive"
            )
        )
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return
    if url_path == "//":
        errs.append(_invalid(f"{path}.path", url_path, "segment[0] may not be empty"))
        return
    if not url_path.startswith("/"):
        errs.append(_invalid(f"{path}.path", url_path, "must start with a '/'"))
    to_check = url_path[1:]
    if to_check.endswith("/"):
        to_check = to_check[:-1]
    for k, step in enumerate(to_check.split("/")):
        if not step:
            errs.append(_invalid(f"{path}.path", url_path, f"segment[{k}] may not be empty"))
            continue
        errs.extend(
            _invalid(f"{path}.path", url_path, f"segment[{k}]: {msg}")
            for msg in is_dns1123_subdomain(step)
        )


def _validate_review_versions(versions: Any, hook_path: str, errs: list[Cause]) -> None:
    """kube's ``validateAdmissionReviewVersions`` (a recognized version required)."""
    path = f"{hook_path}.admissionReviewVersions"
    listed = _strings(versions)
    if not listed:
        errs.append(_required(path, f"must specify one of {', '.join(ACCEPTED_REVIEW_VERSIONS)}"))
        return
    seen: set[str] = set()
    accepted = False
    for k, version in enumerate(listed):
        if version in seen:
            errs.append(_invalid(f"{path}[{k}]", version, "duplicate version"))
            continue
        seen.add(version)
        errs.extend(_invalid(f"{path}[{k}]", version, msg) for msg in _dns1035_label(version))
        accepted = accepted or version in ACCEPTED_REVIEW_VERSIONS
    if not accepted:
        errs.append(
            _invalid(
                path,
                listed,
                f"must include at least one of {', '.join(ACCEPTED_REVIEW_VERSIONS)}",
            )
        )


def _dns1035_label(value: str) -> list[str]:
    """apimachinery's ``IsDNS1035Label``: the problems, empty when valid."""
    problems: list[str] = []
    if len(value) > 63:
        problems.append(max_len_error(63))
    if not re.fullmatch(_DNS1035_LABEL_FMT, value):
        problems.append(regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return problems


# -- field.Error wording ---------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _check_supported(
    hook: Mapping[str, Any], name: str, supported: tuple[str, ...], path: str, errs: list[Cause]
) -> None:
    value = hook.get(name)
    if value is not None and value not in supported:
        errs.append(_not_supported(f"{path}.{name}", value, supported))


def _bad_value(value: Any) -> str:
    """A bad value as v1.36's ``field.Error`` prints it: strings quoted, numbers bare, lists as
    compact JSON (``["*","apps"]``)."""
    if isinstance(value, str):
        return go_quote(value)
    return orjson.dumps(value).decode()


def _required(path: str, detail: str = "") -> Cause:
    message = f"Required value: {detail}" if detail else "Required value"
    return {"reason": "FieldValueRequired", "message": message, "field": path}


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {_bad_value(value)}: {detail}",
        "field": path,
    }


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    listed = ", ".join(go_quote(s) for s in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f"Unsupported value: {_bad_value(value)}: supported values: {listed}",
        "field": path,
    }


def _duplicate(path: str, value: Any) -> Cause:
    return {
        "reason": "FieldValueDuplicate",
        "message": f"Duplicate value: {_bad_value(value)}",
        "field": path,
    }


def _forbidden(path: str, detail: str) -> Cause:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": path}
