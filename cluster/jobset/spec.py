"""Reading a JobSet's spec and status as the controller does (the webhook has defaulted it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .constants import CONTROLLER_NAME, IN_ORDER

__all__ = [
    "dns_hostnames",
    "managed_by_other",
    "replicated_jobs",
    "restarts",
    "suspended",
]


def replicated_jobs(js: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in (js.get("spec") or {}).get("replicatedJobs") or () if isinstance(r, Mapping)]


def restarts(js: Mapping[str, Any]) -> int:
    return int((js.get("status") or {}).get("restarts") or 0)


def suspended(js: Mapping[str, Any]) -> bool:
    return bool((js.get("spec") or {}).get("suspend"))


def dns_hostnames(js: Mapping[str, Any]) -> bool:
    return bool(((js.get("spec") or {}).get("network") or {}).get("enableDNSHostnames"))


def in_order(js: Mapping[str, Any]) -> bool:
    policy = (js.get("spec") or {}).get("startupPolicy") or {}
    return policy.get("startupPolicyOrder") == IN_ORDER


def managed_by_other(js: Mapping[str, Any]) -> str | None:
    manager = (js.get("spec") or {}).get("managedBy")
    return manager if manager is not None and manager != CONTROLLER_NAME else None
