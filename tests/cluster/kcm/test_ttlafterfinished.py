"""When a finished Job is due for deletion (``ttlafterfinished.expires_in``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubetrain.cluster.kcm.ttlafterfinished import expires_in

NOW = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


def job(ttl: int | None, condition: str | None, *, deleting: bool = False) -> Any:
    obj: Any = {"metadata": {"name": "j"}, "spec": {}, "status": {}}
    if ttl is not None:
        obj["spec"]["ttlSecondsAfterFinished"] = ttl
    if condition is not None:
        obj["status"]["conditions"] = [
            {"type": condition, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:20Z"
    return obj


def test_expiry_from_the_terminal_condition() -> None:
    assert expires_in(job(60, "Complete"), NOW) == 30
    assert expires_in(job(10, "Failed"), NOW) == -20
    assert expires_in(job(0, "Complete"), NOW) == -30


def test_never_without_ttl_unfinished_or_deleting() -> None:
    assert expires_in(job(None, "Complete"), NOW) is None
    assert expires_in(job(10, None), NOW) is None
    assert expires_in(job(10, "SuccessCriteriaMet"), NOW) is None
    assert expires_in(job(10, "Complete", deleting=True), NOW) is None
