"""``spec.podFailurePolicy``: what a failed pod means (``pod_failure_policy.go``).

The first rule that matches decides: ``FailJob`` (the Job fails with a message naming the
container and exit code, or the pod condition), ``Ignore`` (not counted against backoffLimit),
``Count`` (counted, the default when no rule matches), ``FailIndex`` (the index fails, with
backoffLimitPerIndex). onExitCodes looks at terminated containers with a non-zero exit code
(containers, then init containers); onPodConditions at the pod's conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PolicyMatch", "match_pod_failure_policy"]


@dataclass(frozen=True, slots=True)
class PolicyMatch:
    """The verdict on one failed pod: ``fail_job_message`` (a FailJob rule matched),
    ``count`` (counted against backoffLimit), ``action`` (None: no rule matched)."""

    fail_job_message: str | None = None
    count: bool = True
    action: str | None = None


_NO_MATCH = PolicyMatch()


def _exit_code_matches(code: int, req: Mapping[str, Any]) -> bool:
    values = req.get("values") or ()
    if req.get("operator") == "In":
        return code in values
    if req.get("operator") == "NotIn":
        return code not in values
    return False


def _matching_container(
    status: Mapping[str, Any], req: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    name = req.get("containerName")
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or ():
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated is None:
                continue
            if name is not None and cs.get("name") != name:
                continue
            code = int(terminated.get("exitCode") or 0)
            if code != 0 and _exit_code_matches(code, req):
                found: Mapping[str, Any] = cs
                return found
    return None


def _matching_condition(
    status: Mapping[str, Any], patterns: list[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or ():
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get(
                "status", "True"
            ):
                matched: Mapping[str, Any] = cond
                return matched
    return None


def _verdict(action: str, message: str) -> PolicyMatch:
    if action == "Ignore":
        return PolicyMatch(count=False, action=action)
    if action == "FailJob":
        return PolicyMatch(fail_job_message=message, action=action)
    return PolicyMatch(action=action)  # Count, FailIndex


def match_pod_failure_policy(job: Mapping[str, Any], pod: Mapping[str, Any]) -> PolicyMatch:
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not policy:
        return _NO_MATCH
    meta, status = pod["metadata"], pod.get("status") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    for index, rule in enumerate(policy.get("rules") or ()):
        action = str(rule.get("action") or "")
        if rule.get("onExitCodes") is not None:
            cs = _matching_container(status, rule["onExitCodes"])
            if cs is not None:
                code = cs["state"]["terminated"].get("exitCode")
                message = (
                    f"Container {cs.get('name')} for pod {ns}/{name} failed with exit code "
                    f"{code} matching {action} rule at index {index}"
                )
                return _verdict(action, message)
        elif rule.get("onPodConditions"):
            cond = _matching_condition(status, rule["onPodConditions"])
            if cond is not None:
                message = (
                    f"Pod {ns}/{name} has condition {cond.get('type')} matching {action} rule "
                    f"at index {index}"
                )
                return _verdict(action, message)
    return _NO_MATCH
