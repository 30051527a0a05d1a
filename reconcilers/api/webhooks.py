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

MPIJob in two versions: the configurations name ``kubeflow.org/v1`` only, with ``matchPolicy:
Equivalent``, so a ``kubeflow.org/v2beta1`` request reaches the same MPIJob webhooks converted to
v1 by the CRD's conversion webhook, which stamps the version it was written in
(``mpi_v2beta1.ORIGIN_ANNOTATION``). Why one pair of webhooks rather than v2beta1 ones: the
stored object is v1 and the annotation, not the request's version, is what a job is (a v1 job
read and written back through v2beta1 is still a v1 job). So both handlers dispatch on
``written_as_v2beta1``: such a job gets mpi-operator v2's defaulting and validation
(``mpi_v2beta1.py``), every other MPIJob exactly the v1 rules. An API server that relabels rather
than converts for an equivalent webhook (none kubetrain runs on: kube and the embedded server
convert) would send the v2beta1 object without the
annotation; there a request whose ``requestKind`` is v2beta1 and whose object has no annotation
is a v2beta1 job, and the defaulter adds the annotation to its patch. The annotation is checked
for both versions: ``v1`` or ``v2beta1``, and immutable on update (a 422 naming
``metadata.annotations[kubetrain.kubeflow.org/api-version]``). With MPIJob among the kinds,
``register_job_webhooks`` also serves the CRD's conversion at ``/convert``
(``mpi_conversion.py``).
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
from kubetrain.reconcilers.api.kinds import ALL_KINDS, GROUP, MPIJOB, VERSION, JobKind
from kubetrain.reconcilers.api.mpi_conversion import CONVERSION_PATH, convert_mpijob
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    ORIGIN_ANNOTATION,
    V2BETA1,
    default_mpijob_v2beta1,
    transition_errors_v2beta1,
    validate_mpijob_v2beta1,
    validate_mpijob_v2beta1_update,
    validate_origin,
    validate_origin_update,
    written_as_v2beta1,
)
from kubetrain.reconcilers.api.trainer_webhooks import trainer_webhook_entries
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
    "v2beta1_request",
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


def v2beta1_request(request: Request, obj: Obj) -> bool:
    """Whether the MPIJob ``obj`` of ``request`` is a v2beta1 job: its annotation says so, or
    it has none and the request was made in v2beta1 (an API server that did not convert it for
    the webhook; see the module docstring)."""
    if written_as_v2beta1(obj):
        return True
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if isinstance(annotations, dict) and annotations.get(ORIGIN_ANNOTATION) is not None:
        return False
    request_kind = request.get("requestKind")
    return isinstance(request_kind, dict) and request_kind.get("version") == V2BETA1


def _stamped_v2beta1(obj: Obj) -> Obj:
    """``obj`` with ``ORIGIN_ANNOTATION: v2beta1`` (a copy; ``obj`` is not modified)."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), ORIGIN_ANNOTATION: V2BETA1}
    return {**obj, "metadata": meta}


def job_defaulter(kind: JobKind) -> Handler:
    """Mutating handler: a JSONPatch from the submitted job to ``default_job`` of it (a v2beta1
    MPIJob: ``default_mpijob_v2beta1``, the annotation added when missing)."""

    def default(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        if kind is MPIJOB and v2beta1_request(request, obj):
            target = default_mpijob_v2beta1(obj)
            if not written_as_v2beta1(obj):
                target = _stamped_v2beta1(target)
            return patched(json_patch(obj, target))
        return patched(json_patch(obj, default_job(kind, obj)))

    return default


def job_validator(kind: JobKind) -> Handler:
    """Validating handler: every rule on CREATE; on UPDATE the update rules, plus every rule
    when ``spec`` changed (MPIJob: the v2beta1 rules for a v2beta1 job)."""

    def check(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        old = request.get("oldObject")
        if kind is MPIJOB:
            return _check_mpijob(request, obj, old if isinstance(old, dict) else None)
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


def _check_mpijob(request: Request, obj: Obj, old: Obj | None) -> AdmissionResponse:
    """The MPIJob validator: the origin annotation's rules, then the rules of the version the
    job was written in (ratcheted on updates that leave ``spec`` as it was)."""
    update = request.get("operation") == "UPDATE" and old is not None
    v2 = v2beta1_request(request, obj)
    if v2:
        if update and old is not None:
            if old.get("spec") == obj.get("spec"):
                errors = transition_errors_v2beta1(old, obj)
            else:
                errors = validate_mpijob_v2beta1_update(old, obj)
        else:
            errors = validate_origin(obj) + validate_mpijob_v2beta1(obj)
        notes: list[str] = []
    else:
        if update and old is not None:
            origin = validate_origin_update(old, obj)
            if old.get("spec") == obj.get("spec"):
                errors = origin + transition_errors(old, obj)
            else:
                errors = origin + validate_update(MPIJOB, old, obj)
        else:
            errors = validate_origin(obj) + validate(MPIJOB, obj)
        notes = warnings(MPIJOB, obj)
    if not errors:
        return allowed(warnings=notes)
    return invalid(MPIJOB, obj, errors, notes=notes)


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
    """Serve the defaulting and validating webhooks of ``kinds`` from ``server``, and with
    MPIJob among them the CRD's conversion webhook at ``/convert``."""
    for kind in kinds:
        server.register(mutate_path(kind), job_defaulter(kind))
        server.register(validate_path(kind), job_validator(kind))
        if kind is MPIJOB:
            server.register_conversion(CONVERSION_PATH, convert_mpijob)


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
    trainer: bool = True,
) -> list[dict[str, Any]]:
    """The MutatingWebhookConfiguration and the ValidatingWebhookConfiguration for ``kinds``,
    and with ``trainer`` Kubeflow Trainer v2's webhooks (``trainer_webhooks.py``; an API server
    without the Trainer CRDs never calls them).

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
    mutating: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MUTATING_CONFIGURATION, "labels": labels},
        "webhooks": [
            {**hook("defaulter", k, mutate_path(k)), "reinvocationPolicy": "Never"} for k in kinds
        ],
    }
    validating: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATING_CONFIGURATION, "labels": labels},
        "webhooks": [hook("validator", k, validate_path(k)) for k in kinds],
    }
    if trainer:  # Trainer v2 (trainer.kubeflow.org/v1alpha1), after the kinds
        more_mutating, more_validating = trainer_webhook_entries(
            client_config, timeout_seconds=TIMEOUT_SECONDS
        )
        mutating["webhooks"] += more_mutating
        validating["webhooks"] += more_validating
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
