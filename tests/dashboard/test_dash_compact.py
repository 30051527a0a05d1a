"""``dashboard/compact.py``: a finished job's row is the same from its compacted form, which
keeps no pod template; a running job is not compacted."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain.dashboard.compact import COMPACTED, compact_finished_job, is_compacted
from kubetrain.dashboard.index import make_row

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "kubetrain" / "examples").glob("*.yaml"))
T = "2026-12-05T11:00:00Z"


def finished(manifest: dict[str, Any]) -> dict[str, Any]:
    job = copy.deepcopy(manifest)
    job["metadata"].update(uid="u-1", creationTimestamp="2026-12-05T10:59:00Z", namespace="ns")
    if job["kind"] == "TrainJob":
        job["status"] = {
            "phase": "Complete",
            "conditions": [
                {"type": "Complete", "status": "True", "reason": "JobsCompleted", "message": "",
                 "lastTransitionTime": T},
            ],
            "jobsStatus": [{"name": "node", "succeeded": 2}],
        }  # fmt: skip
    else:
        job["status"] = {
            "conditions": [
                {"type": t, "status": "True", "reason": t, "message": "m", "lastTransitionTime": T}
                for t in ("Created", "Running", "Succeeded")
            ],
            "completionTime": T,
            "startTime": T,
        }
    return job


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_a_finished_jobs_row_survives_compaction(path: Path) -> None:
    job = finished(yaml.safe_load(path.read_text()))
    kind = job["kind"]
    transform = compact_finished_job(kind)
    compact = transform(copy.deepcopy(job))
    assert is_compacted(compact) and compact[COMPACTED] is True
    assert make_row(kind, compact) == make_row(kind, job)
    assert "template" not in str(compact.get("spec")), compact.get("spec")
    assert transform(compact) == compact  # idempotent


def test_a_running_job_is_kept_whole() -> None:
    job = yaml.safe_load((EXAMPLES[0]).read_text())
    job["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    job["status"] = {"conditions": [{"type": "Running", "status": "True"}]}
    kept = compact_finished_job(job["kind"])(copy.deepcopy(job))
    assert not is_compacted(kept)
    assert kept["spec"] == job["spec"] and "managedFields" not in kept["metadata"]
