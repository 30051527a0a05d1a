"""A JobSet's child Jobs sorted into the current attempt's active, successful and failed Jobs
and the previous attempts' (``getChildJobs``), and the per-replicatedJob counts of
``status.replicatedJobsStatus`` (``calculateReplicatedJobStatuses``).

A Job belongs to a previous attempt when its ``restart-attempt`` label is below
``status.restarts``; those are deleted and recreated. Ready: succeeded + ready pods reach
min(parallelism, completions). Succeeded and failed come from the Job's terminal condition only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .constants import REPLICATED_JOB_NAME_KEY, RESTARTS_KEY
from .spec import replicated_jobs, restarts

__all__ = ["ChildJobs", "classify", "job_finished", "replicated_job_statuses"]

Obj = dict[str, Any]


@dataclass(kw_only=True)
class ChildJobs:
    active: list[Obj] = field(default_factory=list)
    successful: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)
    previous: list[Obj] = field(default_factory=list)

    def names(self) -> set[str]:
        return {
            j["metadata"]["name"]
            for group in (self.active, self.successful, self.failed, self.previous)
            for j in group
        }


def job_finished(job: Mapping[str, Any]) -> str:
    """ "Complete", "Failed" or "" (the Job's terminal condition that is True)."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return ""


def classify(js: Mapping[str, Any], jobs: list[Obj]) -> ChildJobs:
    out = ChildJobs()
    target = restarts(js)
    for job in jobs:
        try:
            attempt = int((job["metadata"].get("labels") or {}).get(RESTARTS_KEY, ""))
        except ValueError:
            attempt = -1  # JobSet errors out on it; here it is recreated
        if attempt < target:
            out.previous.append(job)
            continue
        state = job_finished(job)
        if state == "Complete":
            out.successful.append(job)
        elif state == "Failed":
            out.failed.append(job)
        else:
            out.active.append(job)
    return out


def _rjob_of(job: Mapping[str, Any]) -> str:
    return str((job["metadata"].get("labels") or {}).get(REPLICATED_JOB_NAME_KEY) or "")


def replicated_job_statuses(js: Mapping[str, Any], jobs: ChildJobs) -> list[Obj]:
    counts: dict[str, Obj] = {
        str(r["name"]): {
            "name": str(r["name"]),
            "ready": 0,
            "succeeded": 0,
            "failed": 0,
            "active": 0,
            "suspended": 0,
        }
        for r in replicated_jobs(js)
    }
    for job in jobs.active:
        entry = counts.get(_rjob_of(job))
        if entry is None:
            continue
        spec, status = job.get("spec") or {}, job.get("status") or {}
        pods = int(spec.get("parallelism") or 0)
        if spec.get("completions") is not None and int(spec["completions"]) < pods:
            pods = int(spec["completions"])
        if int(status.get("succeeded") or 0) + int(status.get("ready") or 0) >= pods:
            entry["ready"] += 1
        if int(status.get("active") or 0) > 0:
            entry["active"] += 1
        if spec.get("suspend"):
            entry["suspended"] += 1
    for group, key in ((jobs.successful, "succeeded"), (jobs.failed, "failed")):
        for job in group:
            entry = counts.get(_rjob_of(job))
            if entry is not None:
                entry[key] += 1
    return list(counts.values())


def status_of(statuses: list[Obj], name: str) -> Obj | None:
    return next((s for s in statuses if s["name"] == name), None)
