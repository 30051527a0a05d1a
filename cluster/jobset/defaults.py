"""JobSet's defaulting webhook (``pkg/webhooks/jobset_webhook.go`` ``Default``), on create only
(its MutatingWebhookConfiguration matches CREATE).

The controller relies on it: a JobSet without ``network`` crashed it before jobset#1266, so the
embedded cluster runs it in the server's admission path for every JobSet it creates.
"""

from __future__ import annotations

from typing import Any

from .constants import ANY_ORDER, OPERATOR_ALL

__all__ = ["default_jobset"]


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def default_jobset(js: dict[str, Any]) -> None:
    """In place: successPolicy ``{operator: All}``, startupPolicy ``AnyOrder``, each Job template
    ``completionMode: Indexed`` and pod ``restartPolicy: OnFailure``, network
    ``enableDNSHostnames`` and ``publishNotReadyAddresses`` true, failure policy rule names
    ``failurePolicyRule<i>``, volume claim retention ``Delete``."""
    spec = _dict(js, "spec")
    if not isinstance(spec.get("successPolicy"), dict):
        spec["successPolicy"] = {"operator": OPERATOR_ALL}
    if not isinstance(spec.get("startupPolicy"), dict):
        spec["startupPolicy"] = {"startupPolicyOrder": ANY_ORDER}
    for rjob in spec.get("replicatedJobs") or ():
        if not isinstance(rjob, dict):
            continue
        job_spec = _dict(_dict(rjob, "template"), "spec")
        if job_spec.get("completionMode") is None:
            job_spec["completionMode"] = "Indexed"
        pod_spec = _dict(_dict(job_spec, "template"), "spec")
        if not pod_spec.get("restartPolicy"):
            pod_spec["restartPolicy"] = "OnFailure"
    network = _dict(spec, "network")
    if network.get("enableDNSHostnames") is None:
        network["enableDNSHostnames"] = True
    if network.get("publishNotReadyAddresses") is None:
        network["publishNotReadyAddresses"] = True
    policy = spec.get("failurePolicy")
    if isinstance(policy, dict):
        for i, rule in enumerate(policy.get("rules") or ()):
            if isinstance(rule, dict) and not rule.get("name"):
                rule["name"] = f"failurePolicyRule{i}"
    for claim_policy in spec.get("volumeClaimPolicies") or ():
        if isinstance(claim_policy, dict) and not isinstance(
            claim_policy.get("retentionPolicy"), dict
        ):
            claim_policy["retentionPolicy"] = {"whenDeleted": "Delete"}
