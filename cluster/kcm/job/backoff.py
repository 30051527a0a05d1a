"""The delay before a Job re-creates pods after failures (``backoff_utils.go``).

Per Job: failures since the last success and when the last one happened. The delay is 10 s
doubled for each further consecutive failure, capped at 10 min, counted from the last failure
(``getRemainingTimeForFailuresCount``). With backoffLimitPerIndex each index has its own delay,
from the failure count annotation of its last failed pod.

A record is built each sync from the pods newly finished (``new_record``) and stored only once
the status counting them is written (``update``), as kube does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .pods import finished_time

__all__ = ["DEFAULT_BACKOFF", "MAX_BACKOFF", "BackoffRecord", "BackoffStore", "remaining_seconds"]

DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 600.0


@dataclass(frozen=True, slots=True)
class BackoffRecord:
    key: str
    failures_after_last_success: int = 0
    last_failure: datetime | None = None


def remaining_seconds(
    now: datetime,
    failures: int,
    last_failure: datetime | None,
    *,
    base: float = DEFAULT_BACKOFF,
    cap: float = MAX_BACKOFF,
) -> float:
    """Seconds still to wait before re-creating pods (0: now)."""
    if failures == 0 or last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = (now - last_failure).total_seconds()
    return 0.0 if delay < elapsed else delay - elapsed


class BackoffStore:
    """The records of the Jobs being run, by key."""

    def __init__(self) -> None:
        self._records: dict[str, BackoffRecord] = {}

    def update(self, record: BackoffRecord) -> None:
        self._records[record.key] = record

    def remove(self, key: str) -> None:
        self._records.pop(key, None)

    def new_record(
        self,
        key: str,
        succeeded: Sequence[Mapping[str, Any]],
        failed: Sequence[Mapping[str, Any]],
    ) -> BackoffRecord:
        """``newBackoffRecord``: the stored record moved on by the newly finished pods."""
        old = self._records.get(key) or BackoffRecord(key)
        if not succeeded and not failed:
            return old
        failed_times = sorted(finished_time(p) for p in failed)
        if not succeeded:
            return BackoffRecord(
                key, old.failures_after_last_success + len(failed), failed_times[-1]
            )
        last_success = max(finished_time(p) for p in succeeded)
        after = [t for t in failed_times if t > last_success]
        return BackoffRecord(key, len(after), after[-1] if after else None)
