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
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

from kubetrain.base.jsoncopy import json_copy
from kubetrain.reconcilers.api.kinds import ALL_KINDS, GROUP, VERSION, JobKind

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
        }
    return {}


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


def crd(kind: JobKind) -> dict[str, Any]:
    """The CustomResourceDefinition object of one kind."""
    subresources: dict[str, Any] = {"status": {}}
    if kind.scalable:
        field = kind.replica_field
        subresources["scale"] = {
            "specReplicasPath": f".spec.{field}.Worker.replicas",
            "statusReplicasPath": ".status.replicaStatuses.Worker.active",
            "labelSelectorPath": ".status.replicaStatuses.Worker.selector",
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
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
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(k) for k in ALL_KINDS]


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
