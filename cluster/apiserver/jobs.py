"""batch/v1 Job: the defaults and the generated selector a real kube-apiserver gives a Job.

Kube applies a Job's defaults when it decodes the request (``pkg/apis/batch/v1/defaults.go``
``SetDefaults_Job`` and the core defaults of the pod template), so a mutating admission webhook
already sees them; the selector and the template's ``controller-uid``/``job-name`` labels come
later, from the registry strategy (``pkg/registry/batch/job/strategy.go``), once the uid is
assigned: after the mutating webhooks, before validation. ``rest.py`` keeps that order:
``default_job`` is the resource's defaulter (run before admission), ``generate_selector`` runs
from ``job_causes`` (``jobs_validation.py``) on create, after admission.

The labels and annotations are batch/v1's constants (``k8s.io/api/batch/v1/types.go``).
"""

from __future__ import annotations

from typing import Any

from .podspec_defaults import default_pod_spec

__all__ = [
    "CONTROLLER_UID_LABEL",
    "JOB_NAME_LABEL",
    "LEGACY_CONTROLLER_UID_LABEL",
    "LEGACY_JOB_NAME_LABEL",
    "MAX_INT32",
    "default_job",
    "generate_selector",
]

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
MAX_INT32 = 2**31 - 1


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` as a dict, set to ``{}`` when missing or null (Go's zero struct)."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def default_job(job: dict[str, Any]) -> None:
    """``SetDefaults_Job`` in place (``job`` is the write's own copy), on create and update.

    completions and parallelism 1 when both are unset, else parallelism 1; backoffLimit 6, or
    MaxInt32 with backoffLimitPerIndex; the Job's labels from the template's when the Job has
    none; completionMode NonIndexed; suspend false; onPodConditions statuses True;
    podReplacementPolicy Failed with a podFailurePolicy, else TerminatingOrFailed.
    """
    spec = _obj(job, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template = _obj(spec, "template")
    template_meta = template.get("metadata")
    labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
    meta = _obj(job, "metadata")
    if isinstance(labels, dict) and labels and not meta.get("labels"):
        # the same map, as Go's assignment shares it: the selector labels generated later into
        # the template's appear on the Job too (kube v1.36 stores all four there)
        meta["labels"] = labels
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in policy.get("rules") or ():
            for pattern in (rule.get("onPodConditions") or ()) if isinstance(rule, dict) else ():
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatingOrFailed"
    default_pod_spec(_obj(template, "spec"))


def generate_selector(job: dict[str, Any]) -> None:
    """The strategy's ``generateSelector`` (unless ``spec.manualSelector`` is true), in place:
    the template gets ``job-name``/``batch.kubernetes.io/job-name`` = the Job's name and
    ``controller-uid``/``batch.kubernetes.io/controller-uid`` = its uid where it does not set
    them already (a conflicting value is then refused by validation), and the selector matches
    ``batch.kubernetes.io/controller-uid``. Needs ``metadata.uid`` (assigned at create)."""
    spec = _obj(job, "spec")
    if spec.get("manualSelector") is True:
        return
    spec.setdefault("manualSelector", False)  # as kube v1.36 stores it
    meta = job.get("metadata") or {}
    name, uid = str(meta.get("name") or ""), str(meta.get("uid") or "")
    template_meta = _obj(_obj(spec, "template"), "metadata")
    labels = _obj(template_meta, "labels")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = _obj(spec, "selector")
    _obj(selector, "matchLabels").setdefault(CONTROLLER_UID_LABEL, uid)
