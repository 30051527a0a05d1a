"""``JobTracker`` and the progress views, fed with hand-made informer events (no cluster)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from kubetrain.base.clock import FakeClock
from kubetrain.example_jobs import ExamplesError, load_examples
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.progress import JobTracker
from kubetrain.progress_view import LineView, summary_table

Obj = dict[str, Any]


def job(name: str, *conditions: str, created: str = "", completed: str = "") -> Obj:
    status: Obj = {"conditions": [{"type": c, "status": "True", "message": c} for c in conditions]}
    if completed:
        status["completionTime"] = completed
    meta: Obj = {"name": name, "namespace": "default"}
    if created:
        meta["creationTimestamp"] = created
    return {"metadata": meta, "status": status}


def pod(uid: str, job_name: str, phase: str, *, kind: str = "PyTorchJob") -> Obj:
    owner = {"apiVersion": "kubeflow.org/v1", "kind": kind, "name": job_name, "controller": True}
    meta = {"uid": uid, "namespace": "default", "ownerReferences": [owner]}
    return {"metadata": meta, "status": {"phase": phase}}


async def test_pods_are_counted_per_phase_as_they_move_and_go() -> None:
    tracker = JobTracker()
    tracker.on_pod(pod("a", "j", "Pending"))
    tracker.on_pod(pod("b", "j", "Pending"))
    tracker.on_pod(pod("a", "j", "Running"))
    tracker.on_pod(pod("a", "j", "Running"))  # unchanged: counted once
    tracker.on_pod(pod("c", "other", "Running"))
    row = tracker.rows[("PyTorchJob", "default", "j")]
    assert row.pods == {"Pending": 1, "Running": 1, "Succeeded": 0, "Failed": 0}
    tracker.on_pod(pod("a", "j", "Succeeded"))
    tracker.on_pod_deleted(pod("b", "j", "Pending"))
    tracker.on_pod_deleted(DeletedFinalStateUnknown("default/a", pod("a", "j", "Succeeded")))
    assert row.pods == {"Pending": 0, "Running": 0, "Succeeded": 0, "Failed": 0}
    assert tracker.rows[("PyTorchJob", "default", "other")].pods["Running"] == 1


async def test_a_pod_is_counted_under_its_owners_kind() -> None:
    tracker = JobTracker()
    tracker.on_pod(pod("a", "same", "Running", kind="TFJob"))
    tracker.on_pod(pod("b", "same", "Running", kind="PyTorchJob"))
    unowned = pod("c", "same", "Running")
    unowned["metadata"]["ownerReferences"] = []
    tracker.on_pod(unowned)
    assert tracker.rows[("TFJob", "default", "same")].pods["Running"] == 1
    assert tracker.rows[("PyTorchJob", "default", "same")].pods["Running"] == 1


async def test_a_trainjob_row_follows_its_phase_and_its_jobsets_pods() -> None:
    tracker = JobTracker()
    tracker.expect("TrainJob", "default", "tj")
    trainjob: Obj = {"metadata": {"name": "tj", "namespace": "default"}, "status": {}}
    trainjob["status"] = {"phase": "Running"}
    tracker.on_job("TrainJob", trainjob)
    row = tracker.rows[("TrainJob", "default", "tj")]
    assert (row.condition, row.finished) == ("Running", False)
    jobset_pod = {
        "metadata": {
            "uid": "p1",
            "namespace": "default",
            "labels": {"jobset.sigs.k8s.io/jobset-name": "tj"},
        },
        "status": {"phase": "Running"},
    }
    tracker.on_pod(jobset_pod)
    stray = {**jobset_pod, "metadata": {**jobset_pod["metadata"], "uid": "p2"}}
    stray["metadata"]["labels"] = {"jobset.sigs.k8s.io/jobset-name": "a-plain-jobset"}
    tracker.on_pod(stray)  # a JobSet of no TrainJob this tracker knows: not a row
    assert row.pods["Running"] == 1
    assert ("TrainJob", "default", "a-plain-jobset") not in tracker.rows
    done = {
        "type": "Complete",
        "status": "True",
        "message": "jobset completed successfully",
    }
    trainjob["status"] = {"phase": "Complete", "conditions": [done]}
    tracker.on_job("TrainJob", trainjob)
    assert (row.condition, row.message) == ("Succeeded", "jobset completed successfully")
    assert row.finished and tracker.all_succeeded()


async def test_wait_finished_returns_when_every_expected_job_finished() -> None:
    clock = FakeClock(100.0)
    tracker = JobTracker(clock=clock)
    tracker.expect("PyTorchJob", "default", "a")
    tracker.expect("TFJob", "default", "b")
    tracker.on_job("XGBoostJob", job("unrelated", "Running"))  # not expected: does not count
    waiter = asyncio.ensure_future(tracker.wait_finished())
    tracker.on_job("PyTorchJob", job("a", "Created", "Running"))
    clock.advance(4.5)
    tracker.on_job("PyTorchJob", job("a", "Created", "Running", "Succeeded"))
    await asyncio.sleep(0)
    assert not waiter.done()
    tracker.on_job("TFJob", job("b", "Created", "Failed"))
    await asyncio.wait_for(waiter, 1)
    a, b = tracker.expected
    assert (a.name, a.condition, a.elapsed()) == ("a", "Succeeded", 4.5)
    assert (b.name, b.condition, b.message) == ("b", "Failed", "Failed")
    assert not tracker.all_succeeded()


async def test_rejected_and_deleted_jobs_finish_unsuccessfully() -> None:
    tracker = JobTracker()
    tracker.expect("PyTorchJob", "default", "bad")
    tracker.expect("PyTorchJob", "default", "gone")
    tracker.rejected("PyTorchJob", "default", "bad", "spec.x: unknown field")
    tracker.on_job("PyTorchJob", job("gone", "Created"))
    tracker.on_job_deleted("PyTorchJob", job("gone", "Created"))
    await asyncio.wait_for(tracker.wait_finished(), 1)
    rows = {r.name: r for r in tracker.expected}
    assert (rows["bad"].condition, rows["bad"].message) == ("Rejected", "spec.x: unknown field")
    assert rows["gone"].condition == "Deleted"
    assert not tracker.all_succeeded()


async def test_a_job_found_finished_is_timed_by_its_server_timestamps() -> None:
    tracker = JobTracker()
    finished = job(
        "old", "Succeeded", created="2026-01-01T00:00:00Z", completed="2026-01-01T00:00:07Z"
    )
    tracker.on_job("PyTorchJob", finished)  # initial list of an earlier run's job (--data)
    tracker.expect("PyTorchJob", "default", "old", submitted=False)
    await asyncio.wait_for(tracker.wait_finished(), 1)  # already finished: nothing to wait for
    (row,) = tracker.expected
    assert row.elapsed() == 7.0 and row.succeeded


async def test_line_view_prints_conditions_at_once_and_coalesces_pod_bursts() -> None:
    clock = FakeClock(100.0)
    tracker = JobTracker(clock=clock)
    out = io.StringIO()
    view = LineView(tracker, Console(file=out, width=200), coalesce_seconds=0.05)
    with view:
        tracker.expect("PyTorchJob", "default", "j")
        tracker.on_job("PyTorchJob", job("j"))
        for uid in "abc":
            tracker.on_pod(pod(uid, "j", "Pending"))
        for uid in "abc":
            tracker.on_pod(pod(uid, "j", "Running"))
        await asyncio.sleep(0.2)
        tracker.on_job("PyTorchJob", job("j", "Created", "Running"))
        tracker.on_job("XGBoostJob", job("unrelated", "Running"))
    lines = out.getvalue().splitlines()
    assert [ln.split(" ", 1)[1] for ln in lines] == [
        "PyTorchJob j: submitted (pending 1 running 0 succeeded 0 failed 0)",  # first sight
        "PyTorchJob j: submitted (pending 0 running 3 succeeded 0 failed 0)",  # the burst, once
        "PyTorchJob j: Running (pending 0 running 3 succeeded 0 failed 0)",
    ]


async def test_summary_names_each_job_and_shows_why_one_failed() -> None:
    tracker = JobTracker()
    tracker.expect("PyTorchJob", "default", "ok")
    tracker.expect("TFJob", "team", "bad")
    tracker.on_job("PyTorchJob", job("ok", "Succeeded"))
    tracker.rejected("TFJob", "team", "bad", "spec.tfReplicaSpecs: Required value")
    out = io.StringIO()
    Console(file=out, width=200).print(summary_table(tracker))
    text = out.getvalue()
    assert "1/2 jobs succeeded" in text
    ok_line = next(ln for ln in text.splitlines() if " ok " in ln)
    bad_line = next(ln for ln in text.splitlines() if " team/bad " in ln)
    assert "Succeeded" in ok_line and "PyTorchJob" in ok_line
    assert "Rejected" in bad_line and "spec.tfReplicaSpecs: Required value" in bad_line


def test_examples_loader_fills_the_namespace_and_names_bad_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: a}\nspec: {}\n"
    )
    jobs = load_examples(tmp_path, namespace="ns1")
    assert [(j.kind, j.namespace, j.name) for j in jobs] == [("PyTorchJob", "ns1", "a")]
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n")
    with pytest.raises(ExamplesError, match=r"b\.yaml: apiVersion must be kubeflow.org/v1"):
        load_examples(tmp_path)
    (tmp_path / "b.yaml").write_text(
        "apiVersion: trainer.kubeflow.org/v1alpha1\nkind: TrainingRuntime\nmetadata: {name: b}\n"
    )
    with pytest.raises(ExamplesError, match=r"b\.yaml: kind must be TrainJob"):
        load_examples(tmp_path)
    (tmp_path / "b.yaml").write_text(
        "apiVersion: trainer.kubeflow.org/v1alpha1\nkind: TrainJob\nmetadata: {name: b}\n"
    )
    assert [j.resource.plural for j in load_examples(tmp_path)] == ["pytorchjobs", "trainjobs"]
    with pytest.raises(ExamplesError, match="not a directory"):
        load_examples(tmp_path / "a.yaml")
    (empty := tmp_path / "empty").mkdir()
    with pytest.raises(ExamplesError, match="no job manifests"):
        load_examples(empty)
