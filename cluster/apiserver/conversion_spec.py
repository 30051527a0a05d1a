"""A CRD's ``spec.conversion``: defaults, validation and the compiled webhook settings.

Why a module of its own: ``resources.py`` turns CRDs into served resources and must know whether
a CRD converts through a webhook (``ConversionWebhook`` rides on every served version's
``ResourceInfo``), while the converter itself (``conversion.py``) needs the HTTP client; this
module is the part both share, with no I/O.

Validation follows kube's ``validateCustomResourceConversion`` (apiextensions validation.go):
the messages and field paths are the internal type's (``spec.conversion.webhookClientConfig``,
``spec.conversion.conversionReviewVersions``), as a v1 request sees them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._kubetext import go_quote
from .schema import StructuralSchema

__all__ = [
    "REVIEW_VERSIONS",
    "ConversionWebhook",
    "conversion_causes",
    "default_conversion",
    "webhook_of",
]

REVIEW_VERSIONS = ("v1", "v1beta1")
"""ConversionReview versions this server speaks (kube's acceptedConversionReviewVersions)."""

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_URL_FORM = "; desired format: https://host[/path]"


@dataclass(frozen=True, eq=False, kw_only=True)
class ConversionWebhook:
    """A CRD's ``Webhook`` conversion: where to call and what the versions' schemas are.

    ``schemas`` maps every version of the CRD (served or not: the storage version may be
    unserved) to its structural schema (None: none), for pruning what the webhook returns.
    """

    crd_name: str
    url: str | None
    service: Mapping[str, Any] | None
    ca_bundle: str | None
    review_versions: tuple[str, ...]
    schemas: Mapping[str, StructuralSchema | None] = field(default_factory=dict)


def default_conversion(crd: dict[str, Any]) -> None:
    """v1 defaults: ``conversion: {strategy: None}``; a webhook service's port 443."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    conversion = spec.get("conversion")
    if conversion is None:
        spec["conversion"] = {"strategy": "None"}
        return
    if not isinstance(conversion, dict):
        return
    service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443


def _cause(reason: str, path: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": path}


def _invalid(path: str, value: str, detail: str) -> dict[str, str]:
    return _cause("FieldValueInvalid", path, f"Invalid value: {go_quote(value)}: {detail}")


def _url_causes(path: str, url: str) -> list[dict[str, str]]:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return [
            _cause(
                "FieldValueRequired",
                path,
                f"Required value: url must be a valid URL: {exc}{_URL_FORM}",
            )
        ]
    out = []
    if parts.scheme != "https":
        out.append(
            _invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM)
        )
    if not parts.netloc.rpartition("@")[2]:
        out.append(_invalid(path, "", "host must be specified" + _URL_FORM))
    if "@" in parts.netloc:
        user = parts.netloc.rpartition("@")[0]
        out.append(_invalid(path, user, "user information is not permitted in the URL"))
    if parts.fragment:
        out.append(_invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        out.append(_invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return out


def _service_causes(path: str, service: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    if not service.get("name"):
        out.append(
            _cause("FieldValueRequired", f"{path}.name", "Required value: service name is required")
        )
    if not service.get("namespace"):
        out.append(
            _cause(
                "FieldValueRequired",
                f"{path}.namespace",
                "Required value: service namespace is required",
            )
        )
    port = service.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        out.append(
            _cause(
                "FieldValueInvalid",
                f"{path}.port",
                f"Invalid value: {port}: port is not valid: must be between 1 and 65535, inclusive",
            )
        )
    svc_path = service.get("path")
    if isinstance(svc_path, str) and svc_path not in ("", "/") and not svc_path.startswith("/"):
        out.append(_invalid(f"{path}.path", svc_path, "must start with a '/'"))
    return out


def _review_version_causes(path: str, versions: Any) -> list[dict[str, str]]:
    if not versions:
        return [_cause("FieldValueRequired", path, "Required value")]
    out = []
    seen: set[str] = set()
    accepted = False
    for i, v in enumerate(versions):
        v = str(v)
        if v in seen:
            out.append(_invalid(f"{path}[{i}]", v, "duplicate version"))
            continue
        seen.add(v)
        if len(v) > 63:
            out.append(_invalid(f"{path}[{i}]", v, "must be no more than 63 characters"))
        if not _DNS1035.match(v):
            out.append(
                _invalid(
                    f"{path}[{i}]",
                    v,
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                    "start with an alphabetic character, and end with an alphanumeric character "
                    "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                    "'[a-z]([-a-z0-9]*[a-z0-9])?')",
                )
            )
        accepted = accepted or v in REVIEW_VERSIONS
    if not accepted:
        listed = ", ".join(go_quote(str(v)) for v in versions)
        out.append(
            _cause(
                "FieldValueInvalid",
                path,
                f"Invalid value: [{listed}]: must include at least one of v1, v1beta1",
            )
        )
    return out


def conversion_causes(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The StatusCauses of an invalid ``spec.conversion`` (empty: valid or absent)."""
    conversion = spec.get("conversion")
    if not isinstance(conversion, Mapping):
        return []
    base = "spec.conversion"
    out: list[dict[str, str]] = []
    strategy = conversion.get("strategy") or ""
    if not strategy:
        out.append(_cause("FieldValueRequired", f"{base}.strategy", "Required value"))
    elif strategy not in ("None", "Webhook"):
        out.append(
            _cause(
                "FieldValueNotSupported",
                f"{base}.strategy",
                f'Unsupported value: {go_quote(str(strategy))}: supported values: "None", "Webhook"',
            )
        )
    webhook = conversion.get("webhook") or {}
    client = webhook.get("clientConfig") if isinstance(webhook, Mapping) else None
    versions = webhook.get("conversionReviewVersions") if isinstance(webhook, Mapping) else None
    cc_path = f"{base}.webhookClientConfig"
    rv_path = f"{base}.conversionReviewVersions"
    if strategy == "Webhook":
        if not isinstance(client, Mapping):
            out.append(
                _cause(
                    "FieldValueRequired",
                    cc_path,
                    "Required value: required when strategy is set to Webhook",
                )
            )
        else:
            url, service = client.get("url"), client.get("service")
            if (url is None) == (service is None):
                out.append(
                    _cause(
                        "FieldValueRequired",
                        cc_path,
                        "Required value: exactly one of url or service is required",
                    )
                )
            elif url is not None:
                out.extend(_url_causes(f"{cc_path}.url", str(url)))
            elif isinstance(service, Mapping):
                out.extend(_service_causes(f"{cc_path}.service", service))
        out.extend(_review_version_causes(rv_path, versions))
    else:
        if isinstance(client, Mapping):
            out.append(
                _cause(
                    "FieldValueForbidden",
                    cc_path,
                    "Forbidden: should not be set when strategy is not set to Webhook",
                )
            )
        if versions:
            out.append(
                _cause(
                    "FieldValueForbidden",
                    rv_path,
                    "Forbidden: should not be set when strategy is not set to Webhook",
                )
            )
    if spec.get("preserveUnknownFields") is True and strategy and strategy != "None":
        out.insert(
            0,
            _invalid(
                f"{base}.strategy",
                str(strategy),
                "must be None if spec.preserveUnknownFields is true",
            ),
        )
    return out


def webhook_of(
    crd: Mapping[str, Any], schemas: Mapping[str, StructuralSchema | None]
) -> ConversionWebhook | None:
    """The compiled ``Webhook`` conversion of a valid CRD, or None (strategy None)."""
    spec = crd.get("spec") or {}
    conversion = spec.get("conversion") or {}
    if conversion.get("strategy") != "Webhook":
        return None
    webhook = conversion.get("webhook") or {}
    client = webhook.get("clientConfig") or {}
    url = client.get("url")
    service = client.get("service")
    return ConversionWebhook(
        crd_name=str((crd.get("metadata") or {}).get("name") or ""),
        url=str(url) if url is not None else None,
        service=service if isinstance(service, Mapping) else None,
        ca_bundle=client.get("caBundle") or None,
        review_versions=tuple(str(v) for v in webhook.get("conversionReviewVersions") or ()),
        schemas=dict(schemas),
    )
