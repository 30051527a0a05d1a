"""CustomResourceDefinitions for the six kubeflow.org/v1 kinds, generated from ``kinds.py``.

``deploy/crds/*.yaml`` and the Helm chart's ``deploy/helm/kubetrain/crds/`` are this module's
output (``python -m kubetrain.reconcilers.api.crds``); a test keeps the files in sync. The schemas
type the job API field by field, and each replica's pod template is Kubernetes' own PodTemplateSpec
schema (vendored in ``pod_template_schema.json`` by ``tools/deploy/pod_template_schema.py``; the
conformance tier regenerates it from its kube-apiserver's release and compares). So a misspelled
field, job or pod, is pruned as kube-apiserver prunes it on a Pod, and a wrongly typed value is
refused at ``kubectl apply`` with its field path.

The CRDs are several hundred kilobytes: install them with ``kubectl apply --server-side`` (a
client-side apply stores the whole object in an annotation, which is limited to 256 KiB).

``mpijobs.kubeflow.org`` serves two versions in one CRD: ``v1`` (training-operator's MPIJob, the
storage version, unchanged) and ``v2beta1`` (mpi-operator v0.8.2's MPIJob, served, not stored).
Why one CRD: a group/plural is one CRD, and both APIs are ``kubeflow.org`` ``mpijobs``. The
v2beta1 schema follows mpi-operator's ``manifests/base/kubeflow.org_mpijobs.yaml`` field for
field (names, types, enums, schema defaults, required; ``status`` subresource, no scale, no
printer columns), built with the same helpers; the v1 schema also names v2beta1's
``runLauncherAsWorker``, ``sshAuthMountPath``, ``launcherCreationPolicy`` and
``mpiImplementation``, without defaults or enums, so that the API server does not prune them
from v2beta1 jobs on their way to storage. ``spec.conversion`` is ``Webhook`` (review version
v1) at kubetrain's webhook server, path ``/convert`` (``mpi_conversion.py``; the rules in
``mpi_v2beta1.py``): through the webhook Service (``webhooks.WebhookService``) by default, or a
URL; ``caBundle`` is left out, the operator injects it as it does into the webhook
configurations.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

from kubetrain.base.jsoncopy import json_copy
from kubetrain.reconcilers.api.kinds import ALL_KINDS, GROUP, VERSION, JobKind
from kubetrain.reconcilers.api.mpi_conversion import CONVERSION_PATH
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    DEFAULT_LAUNCHER_CREATION_POLICY,
    DEFAULT_MPI_IMPLEMENTATION,
    DEFAULT_SLOTS_PER_WORKER,
    DEFAULT_SSH_AUTH_MOUNT_PATH,
    V2BETA1,
)
from kubetrain.reconcilers.api.webhooks import WebhookService

Schema = dict[str, Any]

_INT32: Schema = {"type": "integer", "format": "int32"}
_INT64: Schema = {"type": "integer", "format": "int64"}
_STR: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean"}
_TIME: Schema = {"type": "string", "format": "date-time"}
_QUANTITY: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
_OPEN_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_POD_TEMPLATE_FILE = Path(__file__).with_name("pod_template_schema.json")


def _obj(
    properties: dict[str, Schema],
    *,
    required: list[str] | None = None,
    extensions: Schema | None = None,
) -> Schema:
    """An object schema; ``extensions``: ``x-kubernetes-*`` keys to add."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema.update(extensions or {})
    return schema


def _map_of(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


def _pod_template() -> Schema:
    """Kubernetes' PodTemplateSpec as a structural schema (a fresh copy: callers may edit it).

    Vendored by ``tools/deploy/pod_template_schema.py`` from the OpenAPI document of the
    conformance tier's Kubernetes release, the way controller-gen converts the Go types.
    """
    return json_copy(_vendored_pod_template())


@functools.cache
def _vendored_pod_template() -> Schema:
    """The vendored file, read and parsed once per process (never handed out: it is shared)."""
    document: Schema = json.loads(_POD_TEMPLATE_FILE.read_bytes())
    schema: Schema = document["schema"]
    return schema


def _replica_spec() -> Schema:
    return _obj(
        {
            "replicas": _INT32,
            "restartPolicy": {
                "type": "string",
                "enum": ["Always", "OnFailure", "Never", "ExitCode"],
            },
            "template": _pod_template(),
        }
    )


def _run_policy(kind: JobKind) -> Schema:
    # MPIJob has no cleanPodPolicy default here: its deprecated spec.cleanPodPolicy must still
    # win when runPolicy's is unset (reference 4, "Defaulting").
    clean_pod_policy: Schema = {"type": "string", "enum": ["All", "Running", "None"]}
    if kind.kind != "MPIJob":
        clean_pod_policy["default"] = "None"
    schema = _obj(
        {
            "cleanPodPolicy": clean_pod_policy,
            "ttlSecondsAfterFinished": _INT32,
            "activeDeadlineSeconds": _INT64,
            "backoffLimit": _INT32,
            "schedulingPolicy": _obj(
                {
                    "minAvailable": _INT32,
                    "queue": _STR,
                    "minResources": _map_of(_QUANTITY),
                    "priorityClass": _STR,
                    "scheduleTimeoutSeconds": _INT32,
                }
            ),
            "suspend": {"type": "boolean", "default": False},
            "managedBy": {
                "type": "string",
                # Who manages a job is fixed at creation (the webhook refuses adding it too).
                "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "spec.runPolicy.managedBy is immutable"}
                ],
            },
        }
    )
    # Structural default: every stored job has runPolicy (the Kubeflow SDK's models require it),
    # even when no mutating webhook is installed.
    schema["default"] = {}
    return schema


#: spec.runPolicy.schedulingPolicy.queue may not change (nor be removed) while the job runs: a
#: root rule, because "running" is in status. The webhook applies the same rule
#: (validation.validate_update); this one holds where no webhook is installed.
_QUEUE_IMMUTABLE_WHILE_RUNNING = {
    "rule": (
        "!has(oldSelf.spec.runPolicy) || !has(oldSelf.spec.runPolicy.schedulingPolicy) || "
        "!has(oldSelf.spec.runPolicy.schedulingPolicy.queue) || "
        "(has(self.spec.runPolicy) && has(self.spec.runPolicy.schedulingPolicy) && "
        "has(self.spec.runPolicy.schedulingPolicy.queue) && "
        "self.spec.runPolicy.schedulingPolicy.queue == "
        "oldSelf.spec.runPolicy.schedulingPolicy.queue) || "
        "(has(oldSelf.spec.runPolicy.suspend) && oldSelf.spec.runPolicy.suspend) || "
        "!has(oldSelf.status) || !has(oldSelf.status.conditions) || "
        "!oldSelf.status.conditions.exists(c, c.type == 'Running' && c.status == 'True')"
    ),
    "message": (
        "spec.runPolicy.schedulingPolicy.queue is immutable while the job is running; "
        "suspend the job to change its queue"
    ),
    "fieldPath": ".spec.runPolicy.schedulingPolicy.queue",
}


def _job_status() -> Schema:
    condition = _obj(
        {
            "type": _STR,
            "status": _STR,
            "reason": _STR,
            "message": _STR,
            "lastUpdateTime": _TIME,
            "lastTransitionTime": _TIME,
        },
        required=["status", "type"],
    )
    replica_status = _obj(
        {
            "active": _INT32,
            "succeeded": _INT32,
            "failed": _INT32,
            "labelSelector": _OPEN_OBJECT,
            "selector": _STR,
        }
    )
    return _obj(
        {
            "conditions": {
                "type": "array",
                "items": condition,
                "maxItems": 32,  # one per condition type; bounds the cost of the CEL rule
                "x-kubernetes-list-type": "atomic",
            },
            "replicaStatuses": _map_of(replica_status),
            "startTime": _TIME,
            "completionTime": _TIME,
            "lastReconcileTime": _TIME,
        }
    )


def _metric_spec_list() -> Schema:
    return {"type": "array", "items": _OPEN_OBJECT}


def _kind_spec_fields(kind: JobKind) -> dict[str, Schema]:
    if kind.kind == "TFJob":
        return {"successPolicy": _STR, "enableDynamicWorker": _BOOL}
    if kind.kind == "PyTorchJob":
        elastic = _obj(
            {
                "minReplicas": _INT32,
                "maxReplicas": _INT32,
                "rdzvBackend": {"type": "string", "enum": ["c10d", "etcd", "etcd-v2"]},
                "rdzvPort": _INT32,
                "rdzvHost": _STR,
                "rdzvId": _STR,
                "rdzvConf": {"type": "array", "items": _obj({"key": _STR, "value": _STR})},
                "standalone": _BOOL,
                "nProcPerNode": _INT32,
                "maxRestarts": _INT32,
                "metrics": _metric_spec_list(),
            }
        )
        return {"elasticPolicy": elastic, "nprocPerNode": _STR}
    if kind.kind == "PaddleJob":
        elastic = _obj(
            {
                "minReplicas": _INT32,
                "maxReplicas": _INT32,
                "maxRestarts": _INT32,
                "metrics": _metric_spec_list(),
            }
        )
        return {"elasticPolicy": elastic}
    if kind.kind == "MPIJob":
        return {
            "slotsPerWorker": _INT32,
            "cleanPodPolicy": {"type": "string", "enum": ["All", "Running", "None"]},
            "mainContainer": _STR,
            # kubeflow.org/v2beta1's fields, stored for jobs written in v2beta1 (see the module
            # docstring); no defaults or enums here: v1 jobs do not have them.
            **{
                name: {**schema, "description": f"{_V2BETA1_ONLY} {what}"}
                for name, schema, what in (
                    ("runLauncherAsWorker", _BOOL, "Run the launcher as a worker too."),
                    ("sshAuthMountPath", _STR, "Where the SSH credentials are mounted."),
                    (
                        "launcherCreationPolicy",
                        _STR,
                        "AtStartup or WaitForWorkersReady: when the launcher is created.",
                    ),
                    ("mpiImplementation", _STR, "OpenMPI, Intel or MPICH."),
                )
            },
        }
    return {}


_V2BETA1_ONLY = (
    "kubeflow.org/v2beta1 only (kept here because v1 is the storage version; v1 jobs ignore it)."
)


def job_schema(kind: JobKind) -> Schema:
    """The openAPIV3Schema of one kind."""
    spec_fields: dict[str, Schema] = {
        kind.replica_field: _map_of(_replica_spec()),
        "runPolicy": _run_policy(kind),
        **_kind_spec_fields(kind),
    }
    return _obj(
        {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": _obj(spec_fields, required=[kind.replica_field]),
            "status": _job_status(),
        },
        required=["spec"],
        extensions={"x-kubernetes-validations": [_QUEUE_IMMUTABLE_WHILE_RUNNING]},
    )


# -- kubeflow.org/v2beta1 MPIJob (mpi-operator v0.8.2's CRD, built with the helpers above)

#: resource.Quantity's pattern, as controller-gen writes it for a ResourceList.
_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _label_selector() -> Schema:
    requirement = _obj(
        {
            "key": _STR,
            "operator": _STR,
            "values": {"type": "array", "items": _STR, "x-kubernetes-list-type": "atomic"},
        },
        required=["key", "operator"],
    )
    return _obj(
        {
            "matchExpressions": {
                "type": "array",
                "items": requirement,
                "x-kubernetes-list-type": "atomic",
            },
            "matchLabels": _map_of(_STR),
        },
        extensions={"x-kubernetes-map-type": "atomic"},
    )


def _mpi_v2beta1_status() -> Schema:
    condition = _obj(
        {
            "lastTransitionTime": _TIME,
            "lastUpdateTime": _TIME,
            "message": _STR,
            "reason": _STR,
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "type": _STR,
        },
        required=["status", "type"],
    )
    replica_status = _obj(
        {
            "active": _INT32,
            "failed": _INT32,
            "labelSelector": _label_selector(),
            "selector": _STR,
            "succeeded": _INT32,
        }
    )
    return _obj(
        {
            "completionTime": _TIME,
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-map-keys": ["type"],
                "x-kubernetes-list-type": "map",
            },
            "lastReconcileTime": _TIME,
            "replicaStatuses": _map_of(replica_status),
            "startTime": _TIME,
        }
    )


def mpijob_v2beta1_schema() -> Schema:
    """The openAPIV3Schema of ``kubeflow.org/v2beta1`` MPIJob (mpi-operator v0.8.2's)."""
    replica = _obj({"replicas": _INT32, "restartPolicy": _STR, "template": _pod_template()})
    run_policy = _obj(
        {
            "activeDeadlineSeconds": _INT64,
            "backoffLimit": _INT32,
            "cleanPodPolicy": _STR,
            "managedBy": _STR,
            "schedulingPolicy": _obj(
                {
                    "minAvailable": _INT32,
                    "minResources": _map_of({**_QUANTITY, "pattern": _QUANTITY_PATTERN}),
                    "priorityClass": _STR,
                    "queue": _STR,
                    "scheduleTimeoutSeconds": _INT32,
                }
            ),
            "suspend": {"type": "boolean", "default": False},
            "ttlSecondsAfterFinished": _INT32,
        }
    )
    spec = _obj(
        {
            "launcherCreationPolicy": {
                "type": "string",
                "default": DEFAULT_LAUNCHER_CREATION_POLICY,
            },
            "mpiImplementation": {
                "type": "string",
                "default": DEFAULT_MPI_IMPLEMENTATION,
                "enum": ["OpenMPI", "Intel", "MPICH"],
            },
            "mpiReplicaSpecs": _map_of(replica),
            "runLauncherAsWorker": {"type": "boolean", "default": False},
            "runPolicy": run_policy,
            "slotsPerWorker": {**_INT32, "default": DEFAULT_SLOTS_PER_WORKER},
            "sshAuthMountPath": {"type": "string", "default": DEFAULT_SSH_AUTH_MOUNT_PATH},
        },
        required=["mpiReplicaSpecs"],
    )
    return _obj(
        {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": spec,
            "status": _mpi_v2beta1_status(),
        }
    )


def _conversion(
    service: WebhookService | None, url: str | None, ca_bundle: str | None
) -> dict[str, Any]:
    """``spec.conversion``: Webhook, review version v1, at ``CONVERSION_PATH``."""
    client_config: dict[str, Any]
    if url is not None:
        client_config = {"url": url.rstrip("/") + CONVERSION_PATH}
    else:
        svc = service if service is not None else WebhookService()
        client_config = {
            "service": {
                "namespace": svc.namespace,
                "name": svc.name,
                "path": CONVERSION_PATH,
                "port": svc.port,
            }
        }
    if ca_bundle:
        client_config["caBundle"] = ca_bundle
    return {
        "strategy": "Webhook",
        "webhook": {"clientConfig": client_config, "conversionReviewVersions": ["v1"]},
    }


def crd(
    kind: JobKind,
    *,
    service: WebhookService | None = None,
    url: str | None = None,
    ca_bundle: str | None = None,
) -> dict[str, Any]:
    """The CustomResourceDefinition object of one kind.

    MPIJob's also serves ``v2beta1`` and converts through kubetrain's webhook server, reached
    through ``service`` (default ``WebhookService()``) or at ``url`` (``https://host:port``) +
    ``/convert``; ``ca_bundle`` (base64 PEM) is left out by default (the operator injects it).
    The other kinds ignore these."""
    subresources: dict[str, Any] = {"status": {}}
    if kind.scalable:
        field = kind.replica_field
        subresources["scale"] = {
            "specReplicasPath": f".spec.{field}.Worker.replicas",
            "statusReplicasPath": ".status.replicaStatuses.Worker.active",
            "labelSelectorPath": ".status.replicaStatuses.Worker.selector",
        }
    spec: dict[str, Any] = {
        "group": GROUP,
        "names": {
            "kind": kind.kind,
            "listKind": f"{kind.kind}List",
            "plural": kind.plural,
            "singular": kind.singular,
            "categories": ["kubeflow", "training"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "additionalPrinterColumns": [
                    {
                        "name": "State",
                        "type": "string",
                        "jsonPath": ".status.conditions[-1:].type",
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": job_schema(kind)},
                "subresources": subresources,
            }
        ],
    }
    if kind.kind == "MPIJob":
        spec["versions"].append(
            {
                "name": V2BETA1,
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": mpijob_v2beta1_schema()},
                "subresources": {"status": {}},
            }
        )
        spec["conversion"] = _conversion(service, url, ca_bundle)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": spec,
    }


def all_crds(
    *,
    service: WebhookService | None = None,
    url: str | None = None,
    ca_bundle: str | None = None,
) -> list[dict[str, Any]]:
    """``crd`` of every kind (the conversion settings reach MPIJob's)."""
    return [crd(k, service=service, url=url, ca_bundle=ca_bundle) for k in ALL_KINDS]


def crd_file_name(kind: JobKind) -> str:
    return f"{GROUP}_{kind.plural}.yaml"


def render_yaml(obj: dict[str, Any]) -> str:
    import yaml

    header = "# Generated by `python -m kubetrain.reconcilers.api.crds deploy/crds`; do not edit.\n"
    return header + yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in ALL_KINDS:
        path = directory / crd_file_name(kind)
        path.write_text(render_yaml(crd(kind)))
        written.append(path)
    return written


#: Where the generated CRDs go: the kustomize base and the Helm chart's crds/ folder.
TARGETS = ("deploy/crds", "deploy/helm/kubetrain/crds")

if __name__ == "__main__":
    for target in sys.argv[1:] or TARGETS:
        for p in write_all(Path(target)):
            print(p)
