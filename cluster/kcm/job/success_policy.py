"""``spec.successPolicy`` of an Indexed Job (``success_policy.go``): the first rule whose
succeededIndexes are all succeeded (or at least succeededCount of them), or whose
succeededCount alone is reached, declares the Job successful: "Matched rules at index <i>"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .intervals import Intervals, parse_intervals, total

__all__ = ["match_success_policy"]


def _overlap(rule: Intervals, succeeded: Intervals) -> int:
    count = 0
    for a, b in rule:
        for c, d in succeeded:
            count += max(0, min(b, d) - max(a, c) + 1)
    return count


def match_success_policy(job: Mapping[str, Any], succeeded: Intervals) -> str | None:
    """The SuccessCriteriaMet message when a rule matches ``succeeded``, else None."""
    spec = job.get("spec") or {}
    policy = spec.get("successPolicy")
    if not policy or not succeeded:
        return None
    completions = int(spec.get("completions") or 0)
    for index, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_intervals(rule["succeededIndexes"], completions)
            if not required:
                continue
            contained = _overlap(required, succeeded)
            if contained == total(required) or (count is not None and contained >= count):
                return f"Matched rules at index {index}"
        elif count is not None and total(succeeded) >= count:
            return f"Matched rules at index {index}"
    return None
