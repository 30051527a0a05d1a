"""The names JobSet derives (``pkg/util/placement``, ``jobset_controller.go``): child Jobs
``<jobset>-<rjob>-<index>``, their pods' deterministic prefix, the headless Service (the
subdomain, defaulting to the JobSet's name), the coordinator's endpoint and the job key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = ["coordinator_endpoint", "job_hash_key", "job_name", "pod_name", "subdomain"]


def job_name(jobset: str, rjob: str, index: int) -> str:
    return f"{jobset}-{rjob}-{index}"


def pod_name(jobset: str, rjob: str, job_index: int, pod_index: int) -> str:
    return f"{jobset}-{rjob}-{job_index}-{pod_index}"


def subdomain(js: Mapping[str, Any]) -> str:
    """``GetSubdomain``: ``spec.network.subdomain`` or the JobSet's name (a generated name is
    known only after admission, so this is the controller's default, not the webhook's)."""
    network = (js.get("spec") or {}).get("network") or {}
    return str(network.get("subdomain") or js["metadata"].get("name") or "")


def coordinator_endpoint(js: Mapping[str, Any]) -> str:
    c = (js.get("spec") or {}).get("coordinator") or {}
    name = js["metadata"].get("name") or ""
    return (
        f"{name}-{c.get('replicatedJob') or ''}-{int(c.get('jobIndex') or 0)}-"
        f"{int(c.get('podIndex') or 0)}.{subdomain(js)}"
    )


def job_hash_key(namespace: str, name: str) -> str:
    """The ``job-key`` label: the SHA-1 hex digest of ``<namespace>/<job>``."""
    return hashlib.sha1(f"{namespace}/{name}".encode()).hexdigest()
