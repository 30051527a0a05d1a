"""A trimmed but structurally faithful PyTorchJob ``openAPIV3Schema`` and a realistic job.

Shared by the schema tests and benchmarks: replica specs under ``additionalProperties``, pod
templates with containers (env, ports, resources with int-or-string quantities), run policy with
bounds, enums and defaults, a list-map and a preserve-unknown-fields status.
"""

from __future__ import annotations

import copy
from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_QUANTITY: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
_CONTAINER: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _STR,
        "image": _STR,
        "imagePullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
        "command": {"type": "array", "items": _STR},
        "args": {"type": "array", "items": _STR},
        "workingDir": _STR,
        "env": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": _STR,
                    "value": _STR,
                    "valueFrom": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
        },
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["containerPort"],
                "properties": {
                    "name": {"type": "string", "maxLength": 15},
                    "containerPort": {"type": "integer", "format": "int32", "minimum": 1,
                                      "maximum": 65535},
                    "protocol": {"type": "string", "default": "TCP"},
                },
            },
        },
        "resources": {
            "type": "object",
            "properties": {
                "limits": {"type": "object", "additionalProperties": _QUANTITY},
                "requests": {"type": "object", "additionalProperties": _QUANTITY},
            },
        },
        "volumeMounts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["mountPath", "name"],
                "properties": {"name": _STR, "mountPath": _STR, "readOnly": {"type": "boolean"}},
            },
        },
    },
}  # fmt: skip
_POD_TEMPLATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "labels": {"type": "object", "additionalProperties": _STR},
                "annotations": {"type": "object", "additionalProperties": _STR},
            },
        },
        "spec": {
            "type": "object",
            "required": ["containers"],
            "properties": {
                "containers": {"type": "array", "items": _CONTAINER},
                "initContainers": {"type": "array", "items": _CONTAINER},
                "restartPolicy": _STR,
                "schedulerName": _STR,
                "nodeSelector": {"type": "object", "additionalProperties": _STR},
                "serviceAccountName": _STR,
                "tolerations": {
                    "type": "array",
                    "items": {"type": "object", "properties": {
                        "key": _STR, "operator": _STR, "value": _STR, "effect": _STR,
                        "tolerationSeconds": {"type": "integer", "format": "int64"}}},
                },
                "volumes": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name"],
                              "properties": {"name": _STR},
                              "x-kubernetes-preserve-unknown-fields": True},
                },
            },
        },
    },
}  # fmt: skip
_REPLICA_SPEC: dict[str, Any] = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "format": "int32", "minimum": 0},
        "restartPolicy": {"type": "string", "enum": ["Always", "OnFailure", "Never", "ExitCode"]},
        "template": _POD_TEMPLATE,
    },
}
PYTORCHJOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": _STR,
        "kind": _STR,
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["pytorchReplicaSpecs"],
            "properties": {
                "pytorchReplicaSpecs": {"type": "object", "additionalProperties": _REPLICA_SPEC},
                "runPolicy": {
                    "type": "object",
                    "properties": {
                        "backoffLimit": {"type": "integer", "format": "int32", "minimum": 0},
                        "activeDeadlineSeconds": {"type": "integer", "format": "int64",
                                                  "exclusiveMinimum": True, "minimum": 0},
                        "ttlSecondsAfterFinished": {"type": "integer", "format": "int32"},
                        "cleanPodPolicy": {"type": "string", "enum": ["All", "Running", "None"],
                                           "default": "None"},
                        "suspend": {"type": "boolean", "default": False},
                        "schedulingPolicy": {
                            "type": "object",
                            "properties": {
                                "minAvailable": {"type": "integer", "format": "int32"},
                                "queue": _STR,
                                "priorityClass": _STR,
                                "minResources": {"type": "object",
                                                 "additionalProperties": _QUANTITY},
                            },
                        },
                    },
                },
                "elasticPolicy": {
                    "type": "object",
                    "properties": {
                        "minReplicas": {"type": "integer", "format": "int32"},
                        "maxReplicas": {"type": "integer", "format": "int32"},
                        "rdzvBackend": {"type": "string", "enum": ["c10d", "etcd", "etcd-v2"]},
                        "nProcPerNode": {"type": "integer", "format": "int32", "nullable": True},
                        "metrics": {"type": "array", "maxItems": 4,
                                    "items": {"type": "object",
                                              "x-kubernetes-preserve-unknown-fields": True}},
                    },
                },
                "nprocPerNode": {"type": "string", "pattern": "^(auto|cpu|gpu|[0-9]+)$"},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}  # fmt: skip


def _replica(replicas: int, role: str) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "restartPolicy": "OnFailure",
        "template": {
            "metadata": {"labels": {"app": "mnist", "role": role},
                         "annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {
                "containers": [{
                    "name": "pytorch",
                    "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"],
                    "env": [{"name": "LOGLEVEL", "value": "INFO"},
                            {"name": "NCCL_DEBUG", "value": "WARN"}],
                    "ports": [{"name": "pytorchjob-port", "containerPort": 23456}],
                    "resources": {"limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 1},
                                  "requests": {"cpu": "500m", "memory": "1Gi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }],
                "nodeSelector": {"pool": "gpu"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        },
    }  # fmt: skip


_JOB: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "PyTorchJob",
    "metadata": {"name": "mnist", "namespace": "default", "labels": {"team": "ml"}},
    "spec": {
        "runPolicy": {"backoffLimit": 3, "ttlSecondsAfterFinished": 600,
                      "schedulingPolicy": {"minAvailable": 4, "queue": "default"}},
        "nprocPerNode": "auto",
        "pytorchReplicaSpecs": {"Master": _replica(1, "master"), "Worker": _replica(3, "worker")},
    },
}  # fmt: skip


def pytorchjob() -> dict[str, Any]:
    """A fresh, valid PyTorchJob (Master + 3 Workers) the caller may mutate."""
    return copy.deepcopy(_JOB)
