"""What Kubeflow Trainer's install publishes for its clients: the control plane's version.

Why: the ``kubeflow`` SDK's ``TrainerClient()`` reads ConfigMap ``kubeflow-trainer-public`` in
``kubeflow-system`` (``$KUBEFLOW_SYSTEM_NAMESPACE``), key ``kubeflow_trainer_version``, and logs a
multi-line warning on every construction when it cannot. Trainer's manifests create that
ConfigMap with a Role and RoleBinding letting every authenticated user read it (and nothing
else). kubetrain serves Trainer v2.3.0's API, so it publishes the same: ``kubetrain up`` creates
these objects, and ``deploy/trainer-public`` holds them for a cluster (a test keeps the two equal).
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.informers.resource import CONFIGMAPS, NAMESPACES, ResourceRef

__all__ = [
    "PUBLIC_CONFIGMAP",
    "PUBLIC_NAMESPACE",
    "PUBLIC_RESOURCES",
    "TRAINER_API_RELEASE",
    "VERSION_KEY",
    "public_objects",
]

#: The Kubeflow Trainer release whose API (CRDs, runtimes, webhooks, controller) kubetrain serves.
TRAINER_API_RELEASE = "v2.3.0"
PUBLIC_NAMESPACE = "kubeflow-system"
PUBLIC_CONFIGMAP = "kubeflow-trainer-public"
VERSION_KEY = "kubeflow_trainer_version"
_LABELS = {"app.kubernetes.io/name": "kubetrain", "app.kubernetes.io/component": "trainer-public"}
_RBAC = "rbac.authorization.k8s.io"
#: The resource of each kind ``public_objects`` returns.
PUBLIC_RESOURCES: dict[str, ResourceRef] = {
    "Namespace": NAMESPACES,
    "ConfigMap": CONFIGMAPS,
    "Role": ResourceRef(_RBAC, "v1", "roles", True, "Role"),
    "RoleBinding": ResourceRef(_RBAC, "v1", "rolebindings", True, "RoleBinding"),
}


def public_objects() -> list[Obj]:
    """The Namespace, the version ConfigMap, and the Role and RoleBinding that let every
    authenticated user get that one ConfigMap, in the order to create them."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": PUBLIC_NAMESPACE, "labels": dict(_LABELS)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": PUBLIC_CONFIGMAP,
                "namespace": PUBLIC_NAMESPACE,
                "labels": dict(_LABELS),
            },
            "data": {VERSION_KEY: TRAINER_API_RELEASE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": PUBLIC_CONFIGMAP,
                "namespace": PUBLIC_NAMESPACE,
                "labels": dict(_LABELS),
            },
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [PUBLIC_CONFIGMAP],
                    "verbs": ["get"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": PUBLIC_CONFIGMAP,
                "namespace": PUBLIC_NAMESPACE,
                "labels": dict(_LABELS),
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": PUBLIC_CONFIGMAP,
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": "system:authenticated",
                }
            ],
        },
    ]
