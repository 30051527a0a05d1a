"""Validation of built-in workload objects, the minimum kube-apiserver enforces.

The embedded server stores most built-ins as given, but a client that works here must also work
on a real cluster: an apps/v1 Deployment that kube refuses with 422 must be refused here too, with
the same fields and messages (``pkg/apis/apps/validation.ValidateDeploymentSpec`` in kubernetes
v1.36.3): a selector is required and may not be empty, the pod template's labels must match it,
and the template needs at least one container. Nothing else of the Deployment is validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .selectors import SelectorError, label_selector_from_dict

__all__ = ["validate_deployment"]


def _go_value(value: Any) -> str:
    """A field value as kube's ``field.Invalid`` prints a map or nil: JSON, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def validate_deployment(obj: Mapping[str, Any]) -> list[dict[str, str]]:
    """StatusCauses (``reason``, ``message``, ``field``) for an invalid Deployment; [] if valid."""
    causes: list[dict[str, str]] = []
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    raw_selector = spec.get("selector")
    selector_dict = raw_selector if isinstance(raw_selector, Mapping) else None
    if selector_dict is None:
        causes.append(_cause("FieldValueRequired", "spec.selector", "Required value"))
    template = spec.get("template")
    template = template if isinstance(template, Mapping) else {}
    template_meta = template.get("metadata")
    labels = template_meta.get("labels") if isinstance(template_meta, Mapping) else None
    try:
        selector = label_selector_from_dict(selector_dict)
    except SelectorError as exc:
        causes.append(
            _cause(
                "FieldValueInvalid",
                "spec.selector",
                f"Invalid value: {_go_value(selector_dict)}: {exc}",
            )
        )
    else:
        if selector_dict is not None and selector.empty:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    "spec.selector",
                    f"Invalid value: {_go_value(selector_dict)}: "
                    "empty selector is invalid for deployment",
                )
            )
        elif not selector.matches(labels if isinstance(labels, Mapping) else None):
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    f"Invalid value: {_go_value(labels)}: `selector` does not match template "
                    "`labels`",
                )
            )
    pod_spec = template.get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    if not containers:
        causes.append(
            _cause("FieldValueRequired", "spec.template.spec.containers", "Required value")
        )
    return causes
