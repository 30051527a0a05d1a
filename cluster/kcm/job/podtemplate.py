"""The pod a Job creates (``RealPodControl.CreatePodsWithGenerateName`` and ``manageJob``).

From the template: labels, annotations, finalizers plus ``batch.kubernetes.io/job-tracking``,
the spec; the Job as controller owner (``blockOwnerDeletion``). generateName ``<job>-``, or
``<job>-<index>-`` for an Indexed Job, whose pods also get the index as annotation and label,
``JOB_COMPLETION_INDEX`` (a fieldRef on the label) in every container and init container, and
hostname ``<job>-<index>`` (with the template's subdomain, if any, for DNS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .constants import (
    COMPLETION_INDEX,
    COMPLETION_INDEX_ENV,
    INDEX_FAILURE_COUNT,
    INDEX_IGNORED_FAILURE_COUNT,
    TRACKING_FINALIZER,
)

__all__ = ["controller_ref", "generate_name_prefix", "new_pod"]

_MAX_GENERATED_PREFIX = 63 - 5  # names.MaxGeneratedNameLength


def controller_ref(job: Mapping[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def generate_name_prefix(job_name: str, index: int | None) -> str:
    """``<job>-`` or ``<job>-<index>-``, shortened to leave room for the random suffix."""
    prefix = f"{job_name}-" if index is None else f"{job_name}-{index}-"
    if len(prefix) > _MAX_GENERATED_PREFIX:
        prefix = prefix[:_MAX_GENERATED_PREFIX]
    return prefix


def _add_index_env(container: dict[str, Any]) -> None:
    env = container.setdefault("env", [])
    if any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
        return
    env.append(
        {
            "name": COMPLETION_INDEX_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}},
        }
    )


def new_pod(
    job: Mapping[str, Any],
    *,
    index: int | None = None,
    failure_counts: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The pod to POST for ``job`` (``index``: its completion index, Indexed Jobs only;
    ``failure_counts``: (failed, ignored) annotations with backoffLimitPerIndex)."""
    meta = job["metadata"]
    template = orjson.loads(orjson.dumps((job.get("spec") or {}).get("template") or {}))
    tmeta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    finalizers = list(tmeta.get("finalizers") or [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    if index is not None:
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or ():
                _add_index_env(container)
        annotations[COMPLETION_INDEX] = str(index)
        labels[COMPLETION_INDEX] = str(index)
        spec["hostname"] = f"{meta['name']}-{index}"
        if failure_counts is not None:
            failed, ignored = failure_counts
            annotations[INDEX_FAILURE_COUNT] = str(failed)
            if ignored > 0:
                annotations[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
    pod_meta: dict[str, Any] = {
        "generateName": generate_name_prefix(str(meta["name"]), index),
        "namespace": meta.get("namespace"),
        "labels": labels,
        "finalizers": finalizers,
        "ownerReferences": [controller_ref(job)],
    }
    if annotations:
        pod_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}
