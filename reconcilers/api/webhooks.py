"""The admission webhooks of the six kinds: defaulting (mutating) and validation, and the
webhook configurations that route the API server to them.

Why both: the reference validates five kinds and never persists defaults, so a job applied from
plain YAML lacks ``runPolicy`` and the Kubeflow SDK cannot read it back. Here the mutating webhook
persists exactly what the controller would apply in memory (``defaults.default_job``: one
implementation serves both), then the validating webhook runs every rule of ``validation.py`` on
the defaulted object, so a bad job is refused at ``kubectl apply`` with every problem at once.
The controller keeps validating: it is the last line when no webhook is installed.

Paths are the reference's (``/validate-kubeflow-org-v1-<kind>``) plus controller-runtime's form
for defaulting (``/mutate-kubeflow-org-v1-<kind>``). A refusal is a 422 ``Invalid`` status with
one cause per problem (field path, reason and message), as ``apierrors.NewInvalid`` makes it;
deprecations come back as admission warnings, which kubectl prints.

Updates are ratcheted: when an update leaves ``spec`` as it was (labels, finalizers, a
deletion), only the update rules apply, so an object stored before the webhook existed can still
be labelled or deleted.

``python -m kubetrain.reconcilers.api.webhooks deploy/webhooks`` writes the configurations for a
cluster install (``clientConfig.service``); ``kubetrain up`` installs the same objects.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.engine.webhook.admission import (
    AdmissionResponse,
    Handler,
    Request,
    allowed,
    denied,
    json_patch,
    patched,
)
from kubetrain.engine.webhook.server import WebhookServer
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import ALL_KINDS, GROUP, VERSION, JobKind
from kubetrain.reconcilers.api.validation import (
    FieldError,
    aggregate_message,
    transition_errors,
    validate,
    validate_update,
    warnings,
)

__all__ = [
    "MUTATING_CONFIGURATION",
    "VALIDATING_CONFIGURATION",
    "WebhookService",
    "job_defaulter",
    "job_validator",
    "mutate_path",
    "register_job_webhooks",
    "validate_path",
    "webhook_configurations",
]

VALIDATING_CONFIGURATION = "validator.kubetrain.kubeflow.org"
MUTATING_CONFIGURATION = "defaulter.kubetrain.kubeflow.org"

#: Seconds the API server waits for an answer before the request fails (failurePolicy Fail).
TIMEOUT_SECONDS = 5

_CAUSE_REASONS = {
    "Required": "FieldValueRequired",
    "Invalid": "FieldValueInvalid",
    "NotSupported": "FieldValueNotSupported",
    "Forbidden": "FieldValueForbidden",
    "Duplicate": "FieldValueDuplicate",
}


def validate_path(kind: JobKind) -> str:
    """The reference's validating path, e.g. ``/validate-kubeflow-org-v1-pytorchjob``."""
    return f"/validate-{GROUP.replace('.', '-')}-{VERSION}-{kind.singular}"


def mutate_path(kind: JobKind) -> str:
    """The defaulting path, e.g. ``/mutate-kubeflow-org-v1-pytorchjob``."""
    return f"/mutate-{GROUP.replace('.', '-')}-{VERSION}-{kind.singular}"


# -- handlers ----------------------------------------------------------------------------------


def job_defaulter(kind: JobKind) -> Handler:
    """Mutating handler: a JSONPatch from the submitted job to ``default_job`` of it."""

    def default(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        return patched(json_patch(obj, default_job(kind, obj)))

    return default


def job_validator(kind: JobKind) -> Handler:
    """Validating handler: every rule on CREATE; on UPDATE the update rules, plus every rule
    when ``spec`` changed."""

    def check(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        old = request.get("oldObject")
        if request.get("operation") == "UPDATE" and isinstance(old, dict):
            if old.get("spec") == obj.get("spec"):
                errors = transition_errors(old, obj)  # ratcheted: spec as it was stored
            else:
                errors = validate_update(kind, old, obj)
        else:
            errors = validate(kind, obj)
        notes = warnings(kind, obj)
        if not errors:
            return allowed(warnings=notes)
        return invalid(kind, obj, errors, notes=notes)

    return check


def invalid(
    kind: JobKind, obj: Obj, errors: list[FieldError], *, notes: Iterable[str] = ()
) -> AdmissionResponse:
    """The refusal ``apierrors.NewInvalid`` makes: 422, reason Invalid, a cause per error."""
    name = (obj.get("metadata") or {}).get("name") or ""
    return denied(
        f'{kind.kind}.{GROUP} "{name}" is invalid: {aggregate_message(errors)}',
        code=422,
        reason="Invalid",
        details={
            "name": name,
            "group": GROUP,
            "kind": kind.kind,
            "causes": [
                {
                    "reason": _CAUSE_REASONS.get(e.type, e.type),
                    "message": e.message,
                    "field": e.field,
                }
                for e in errors
            ],
        },
        warnings=list(notes),
    )


def register_job_webhooks(server: WebhookServer, kinds: Iterable[JobKind] = ALL_KINDS) -> None:
    """Serve the defaulting and validating webhooks of ``kinds`` from ``server``."""
    for kind in kinds:
        server.register(mutate_path(kind), job_defaulter(kind))
        server.register(validate_path(kind), job_validator(kind))


# -- configurations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookService:
    """The Service in front of the operator's webhook server (what a cluster install makes)."""

    namespace: str = "kubeflow"
    name: str = "kubetrain-webhook-service"
    port: int = 443


def webhook_configurations(
    kinds: Iterable[JobKind] = ALL_KINDS,
    *,
    service: WebhookService | None = None,
    url: str | None = None,
    ca_bundle: str | None = None,
) -> list[dict[str, Any]]:
    """The MutatingWebhookConfiguration and the ValidatingWebhookConfiguration for ``kinds``.

    The API server reaches the webhooks through ``service`` (default ``WebhookService()``), or
    at ``url`` + path when ``url`` (``https://host:port``) is given. ``ca_bundle`` (base64 PEM)
    is left out by default: the operator injects it (``engine/webhook/rotator.py``) or
    cert-manager's CA injector does.
    """
    kinds = list(kinds)
    svc = service if service is not None else WebhookService()

    def client_config(path: str) -> dict[str, Any]:
        config: dict[str, Any]
        if url is not None:
            config = {"url": url.rstrip("/") + path}
        else:
            config = {
                "service": {
                    "namespace": svc.namespace,
                    "name": svc.name,
                    "path": path,
                    "port": svc.port,
                }
            }
        if ca_bundle:
            config["caBundle"] = ca_bundle
        return config

    def hook(prefix: str, kind: JobKind, path: str) -> dict[str, Any]:
        return {
            "name": f"{prefix}.{kind.singular}.kubetrain.kubeflow.org",
            "admissionReviewVersions": ["v1"],
            "clientConfig": client_config(path),
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "apiVersions": [VERSION],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [kind.plural],
                    "scope": "Namespaced",
                }
            ],
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
        }

    labels = {"app.kubernetes.io/name": "kubetrain", "app.kubernetes.io/component": "webhook"}
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MUTATING_CONFIGURATION, "labels": labels},
        "webhooks": [
            {**hook("defaulter", k, mutate_path(k)), "reinvocationPolicy": "Never"} for k in kinds
        ],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATING_CONFIGURATION, "labels": labels},
        "webhooks": [hook("validator", k, validate_path(k)) for k in kinds],
    }
    return [mutating, validating]


def render_yaml(objs: list[dict[str, Any]]) -> str:
    import yaml

    header = (
        "# Generated by `python -m kubetrain.reconcilers.api.webhooks deploy/webhooks`; do not\n"
        "# edit. The operator injects caBundle (or cert-manager's CA injector does).\n"
    )
    return header + "---\n".join(
        yaml.safe_dump(o, sort_keys=False, default_flow_style=False) for o in objs
    )


WEBHOOKS_FILE = "webhook-configurations.yaml"


def write(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / WEBHOOKS_FILE
    path.write_text(render_yaml(webhook_configurations()))
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/webhooks")))
