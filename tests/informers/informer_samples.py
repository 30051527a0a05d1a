"""Realistic objects as the API server sends them: a finished PyTorchJob and its pods.

Shapes follow a real cluster's answers (managedFields from kubectl apply and the operator, the
last-applied annotation, the pod spec a training operator writes, a completed pod's status), so
memory and speed measurements on them mean something.
"""

from __future__ import annotations

from typing import Any

import orjson

Obj = dict[str, Any]

_CONTAINER = {
    "name": "pytorch",
    "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
    "imagePullPolicy": "IfNotPresent",
    "command": ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"],
    "resources": {
        "limits": {"cpu": "2", "memory": "4Gi"},
        "requests": {"cpu": "2", "memory": "4Gi"},
    },
}


def _managed_fields(manager: str, subresource: str | None = None) -> Obj:
    entry: Obj = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": "kubeflow.org/v1",
        "time": "2024-05-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}
            },
            "f:spec": {
                ".": {},
                "f:pytorchReplicaSpecs": {
                    ".": {},
                    "f:Master": {
                        ".": {},
                        "f:replicas": {},
                        "f:restartPolicy": {},
                        "f:template": {},
                    },
                    "f:Worker": {
                        ".": {},
                        "f:replicas": {},
                        "f:restartPolicy": {},
                        "f:template": {},
                    },
                },
                "f:runPolicy": {".": {}, "f:cleanPodPolicy": {}, "f:ttlSecondsAfterFinished": {}},
            },
        },
    }
    if subresource:
        entry["subresource"] = subresource
        entry["fieldsV1"] = {"f:status": {".": {}, "f:conditions": {}, "f:replicaStatuses": {}}}
    return entry


def _condition(kind: str, reason: str, message: str, at: str) -> Obj:
    return {
        "type": kind,
        "status": "True" if kind == "Succeeded" else "False",
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    }


def finished_pytorchjob(name: str, namespace: str = "team-a", *, rv: int = 1000) -> Obj:
    spec = {
        "pytorchReplicaSpecs": {
            role: {
                "replicas": replicas,
                "restartPolicy": "OnFailure",
                "template": {
                    "metadata": {"annotations": {"sim.kubetrain.dev/run-seconds": "4"}},
                    "spec": {"containers": [dict(_CONTAINER)]},
                },
            }
            for role, replicas in (("Master", 1), ("Worker", 2))
        },
        "runPolicy": {"cleanPodPolicy": "None", "ttlSecondsAfterFinished": 3600},
    }
    last_applied = orjson.dumps(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    ).decode()
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"6f1c8a52-8d1e-4c4b-9a7e-{rv:012d}",
            "resourceVersion": str(rv),
            "generation": 1,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied},
            "managedFields": [
                _managed_fields("kubectl-client-side-apply"),
                _managed_fields("pytorchjob-controller", "status"),
            ],
        },
        "spec": spec,
        "status": {
            "conditions": [
                _condition(
                    "Created",
                    "PyTorchJobCreated",
                    f"PyTorchJob {name} is created.",
                    "2024-05-01T10:00:00Z",
                ),
                _condition(
                    "Running",
                    "PyTorchJobRunning",
                    f"PyTorchJob {namespace}/{name} is running.",
                    "2024-05-01T10:00:05Z",
                ),
                _condition(
                    "Succeeded",
                    "PyTorchJobSucceeded",
                    f"PyTorchJob {namespace}/{name} successfully completed.",
                    "2024-05-01T10:05:00Z",
                ),
            ],
            "replicaStatuses": {
                "Master": {
                    "succeeded": 1,
                    "selector": f"training.kubeflow.org/job-name={name},"
                    "training.kubeflow.org/operator-name=pytorchjob-controller,"
                    "training.kubeflow.org/replica-type=master",
                },
                "Worker": {
                    "succeeded": 2,
                    "selector": f"training.kubeflow.org/job-name={name},"
                    "training.kubeflow.org/operator-name=pytorchjob-controller,"
                    "training.kubeflow.org/replica-type=worker",
                },
            },
            "startTime": "2024-05-01T10:00:00Z",
            "completionTime": "2024-05-01T10:05:00Z",
            "lastReconcileTime": "2024-05-01T10:05:00Z",
        },
    }


def finished_pod(job: Obj, role: str, index: int, *, rv: int = 2000) -> Obj:
    job_meta = job["metadata"]
    name = f"{job_meta['name']}-{role.lower()}-{index}"
    ns = job_meta["namespace"]
    labels = {
        "training.kubeflow.org/job-name": job_meta["name"],
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/replica-type": role.lower(),
        "training.kubeflow.org/replica-index": str(index),
    }
    if role == "Master":
        labels["training.kubeflow.org/job-role"] = "master"
    env = [
        {"name": "MASTER_PORT", "value": "23456"},
        {"name": "MASTER_ADDR", "value": f"{job_meta['name']}-master-0"},
        {"name": "WORLD_SIZE", "value": "3"},
        {"name": "RANK", "value": str(index + (0 if role == "Master" else 1))},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    container = dict(
        _CONTAINER,
        env=env,
        ports=[{"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}],
    )
    container["volumeMounts"] = [
        {
            "name": "kube-api-access-x7k2p",
            "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        }
    ]
    container["terminationMessagePath"] = "/dev/termination-log"
    container["terminationMessagePolicy"] = "File"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"9b0d7e1a-41c2-4f7e-8e55-{rv:012d}",
            "resourceVersion": str(rv),
            "creationTimestamp": "2024-05-01T10:00:01Z",
            "labels": labels,
            "annotations": {"sim.kubetrain.dev/run-seconds": "4"},
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "name": job_meta["name"],
                    "uid": job_meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "pytorchjob-controller",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-05-01T10:00:01Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {k and f"f:{k}": {} for k in labels}},
                        "f:spec": {"f:containers": {}, "f:restartPolicy": {}},
                    },
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-05-01T10:05:00Z",
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {
                        "f:status": {
                            "f:conditions": {},
                            "f:containerStatuses": {},
                            "f:phase": {},
                            "f:podIP": {},
                            "f:startTime": {},
                        }
                    },
                },
            ],
        },
        "spec": {
            "containers": [container],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": f"node-{index % 7}",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "volumes": [
                {
                    "name": "kube-api-access-x7k2p",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
        },
        "status": {
            "phase": "Succeeded",
            "conditions": [
                {
                    "type": t,
                    "status": "True" if t in ("PodScheduled", "Initialized") else "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2024-05-01T10:05:00Z",
                    **({"reason": "PodCompleted"} if t not in ("PodScheduled",) else {}),
                }
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": "10.0.0.7",
            "podIP": f"10.244.1.{index + 10}",
            "podIPs": [{"ip": f"10.244.1.{index + 10}"}],
            "startTime": "2024-05-01T10:00:01Z",
            "containerStatuses": [
                {
                    "name": "pytorch",
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": "2024-05-01T10:00:03Z",
                            "finishedAt": "2024-05-01T10:05:00Z",
                            "containerID": "containerd://3f5e2a9c0d1b",
                        }
                    },
                    "lastState": {},
                    "ready": False,
                    "restartCount": 0,
                    "image": _CONTAINER["image"],
                    "imageID": "docker.io/kubeflowkatib/pytorch-mnist@sha256:" + "ab" * 32,
                    "containerID": "containerd://3f5e2a9c0d1b",
                    "started": False,
                }
            ],
            "qosClass": "Guaranteed",
        },
    }


def finished_job_with_pods(name: str, namespace: str = "team-a", *, rv: int = 1000) -> list[Obj]:
    """The job, then its 3 pods (1 master, 2 workers), each a fresh dict."""
    job = finished_pytorchjob(name, namespace, rv=rv)
    pods = [finished_pod(job, "Master", 0, rv=rv + 1)]
    pods += [finished_pod(job, "Worker", i, rv=rv + 2 + i) for i in range(2)]
    return [job, *pods]


def reparsed(obj: Obj) -> Obj:
    """``obj`` as orjson parses it off the wire (shared key strings, fresh values)."""
    return orjson.loads(orjson.dumps(obj))
