"""The child Job of one replicatedJob index (``constructJob``, ``labelAndAnnotateObject``).

The Job is the replicatedJob's template with every JobSet label set on the Job and on its pod
template, the same keys also as annotations; the coordinator key when ``spec.coordinator`` is
set; the exclusive-placement annotations when the JobSet or the replicatedJob asks for them;
``suspend`` as the JobSet's; the pod ``subdomain`` when DNS hostnames are on. The controller
reference is the JobSet's (controller and blockOwnerDeletion true), so the Jobs are found by
owner UID and collected with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetrain.base.jsoncopy import json_copy

from .constants import (
    API_VERSION,
    COORDINATOR_KEY,
    EXCLUSIVE_KEY,
    GLOBAL_REPLICAS_KEY,
    GROUP_NAME_KEY,
    GROUP_REPLICAS_KEY,
    JOB_GLOBAL_INDEX_KEY,
    JOB_GROUP_INDEX_KEY,
    JOB_INDEX_KEY,
    JOB_KEY,
    JOBSET_NAME_KEY,
    JOBSET_UID_KEY,
    KIND,
    NAMESPACED_JOB_KEY,
    NO_SCHEDULE_TAINT_KEY,
    NODE_SELECTOR_STRATEGY_KEY,
    REPLICATED_JOB_NAME_KEY,
    REPLICATED_JOB_REPLICAS_KEY,
    RESTARTS_KEY,
)
from .naming import coordinator_endpoint, job_hash_key, job_name, subdomain
from .spec import dns_hostnames, replicated_jobs, restarts, suspended

__all__ = ["construct_job", "controller_reference"]

Obj = dict[str, Any]


def controller_reference(js: Mapping[str, Any]) -> Obj:
    meta = js["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _index_in(rjobs: list[Mapping[str, Any]], rjob_name: str, index: int) -> str:
    """The offset of ``rjob_name``'s Job ``index`` over ``rjobs`` in order ("" when absent)."""
    offset = 0
    for r in rjobs:
        if r.get("name") == rjob_name:
            return str(offset + index)
        offset += int(r.get("replicas") or 0)
    return ""


def _replica_sums(js: Mapping[str, Any], rjob_name: str, group: str, index: int) -> dict[str, str]:
    """global-replicas, job-global-index, group-replicas and job-group-index."""
    rjobs = replicated_jobs(js)
    grouped = [r for r in rjobs if r.get("groupName") == group]
    return {
        GLOBAL_REPLICAS_KEY: str(sum(int(r.get("replicas") or 0) for r in rjobs)),
        JOB_GLOBAL_INDEX_KEY: _index_in(rjobs, rjob_name, index),
        GROUP_REPLICAS_KEY: str(sum(int(r.get("replicas") or 0) for r in grouped)),
        JOB_GROUP_INDEX_KEY: _index_in(grouped, rjob_name, index),
    }


def jobset_keys(js: Mapping[str, Any], rjob: Mapping[str, Any], index: int) -> dict[str, str]:
    """The labels (also set as annotations) of the Job of ``rjob`` at ``index``."""
    meta = js["metadata"]
    name = job_name(meta["name"], rjob["name"], index)
    group = str(rjob.get("groupName") or "")
    keys = {
        JOBSET_NAME_KEY: meta["name"],
        JOBSET_UID_KEY: meta["uid"],
        REPLICATED_JOB_NAME_KEY: rjob["name"],
        RESTARTS_KEY: str(restarts(js)),
        REPLICATED_JOB_REPLICAS_KEY: str(int(rjob.get("replicas") or 0)),
        JOB_INDEX_KEY: str(index),
        JOB_KEY: job_hash_key(meta.get("namespace") or "", name),
        GROUP_NAME_KEY: group,
        **_replica_sums(js, rjob["name"], group, index),
    }
    if (js.get("spec") or {}).get("coordinator"):
        keys[COORDINATOR_KEY] = coordinator_endpoint(js)
    return keys


def _exclusive(js: Mapping[str, Any], rjob: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for source in (
        js["metadata"].get("annotations") or {},
        _template_meta(rjob).get("annotations") or {},
    ):
        if EXCLUSIVE_KEY in source:
            out[EXCLUSIVE_KEY] = source[EXCLUSIVE_KEY]
            if NODE_SELECTOR_STRATEGY_KEY in source:
                out[NODE_SELECTOR_STRATEGY_KEY] = source[NODE_SELECTOR_STRATEGY_KEY]
    return out


def _template_meta(rjob: Mapping[str, Any]) -> Mapping[str, Any]:
    return (rjob.get("template") or {}).get("metadata") or {}


def _label_and_annotate(meta: Obj, keys: Mapping[str, str], extra: Mapping[str, str]) -> None:
    meta["labels"] = {**(meta.get("labels") or {}), **keys}
    meta["annotations"] = {**(meta.get("annotations") or {}), **keys, **extra}


def construct_job(js: Mapping[str, Any], rjob: Mapping[str, Any], index: int) -> Obj:
    """The Job to create for ``rjob``'s ``index`` (a new dict; the JobSet is not changed)."""
    meta = js["metadata"]
    template = rjob.get("template") or {}
    tmeta = template.get("metadata") or {}
    name = job_name(meta["name"], rjob["name"], index)
    job_meta: Obj = {"name": name, "namespace": meta.get("namespace") or ""}
    if tmeta.get("labels"):
        job_meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        job_meta["annotations"] = dict(tmeta["annotations"])
    job_meta["ownerReferences"] = [controller_reference(js)]
    spec: Obj = json_copy(dict(template.get("spec") or {}))
    job: Obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": spec}
    keys = jobset_keys(js, rjob, index)
    extra = _exclusive(js, rjob)
    _label_and_annotate(job_meta, keys, extra)
    pod_template = spec.setdefault("template", {})
    _label_and_annotate(pod_template.setdefault("metadata", {}), keys, extra)
    pod_spec = pod_template.setdefault("spec", {})
    if dns_hostnames(js):
        pod_spec["subdomain"] = subdomain(js)
    if (
        EXCLUSIVE_KEY in job_meta["annotations"]
        and NODE_SELECTOR_STRATEGY_KEY in job_meta["annotations"]
    ):
        selector = pod_spec.setdefault("nodeSelector", {})
        selector[NAMESPACED_JOB_KEY] = f"{job_meta['namespace']}_{name}"
        pod_spec.setdefault("tolerations", []).append(
            {"key": NO_SCHEDULE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
        )
    spec["suspend"] = suspended(js)
    return job
