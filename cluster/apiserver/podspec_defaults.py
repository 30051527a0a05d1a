"""The core/v1 defaults of a pod spec, shared by pods and by the pod templates of workloads.

Why one module: kube applies ``SetDefaults_PodSpec`` and the container defaults to every pod
spec it decodes, a Pod's or a template's (a batch/v1 Job's, say); a Pod then gets more from its
own admission (service account, priority, ``enableServiceLinks``), which ``builtins.default_pod``
adds. Checked against kube-apiserver v1.36.3: a Job's stored template carries exactly these.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_pod_spec", "image_pull_policy"]


def image_pull_policy(image: str) -> str:
    """``Always`` for an untagged or ``:latest`` image, else ``IfNotPresent`` (a digest too)."""
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec: dict[str, Any]) -> None:
    """``spec`` (a pod's or a template's, the caller's own copy) with the pod spec's and its
    containers' defaults, in place."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or ():
            if not isinstance(c, dict):
                continue
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            if isinstance(c.get("image"), str):
                c.setdefault("imagePullPolicy", image_pull_policy(c["image"]))
            for port in c.get("ports") or ():
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
