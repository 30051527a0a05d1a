"""ExitedWithCode is noted once per container termination (the pod handler sees the transition),
not on every reconcile; initial-list pods are not noted."""

from __future__ import annotations

import copy
from typing import Any

from fakes import RecordingQueue
from jobkit import make_job, make_pod

from kubetrain.informers.resource import kubeflow
from kubetrain.reconcilers.common.compact import slim_pod
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.exits import ExitLog
from kubetrain.reconcilers.jobcontroller import OwnedObjectHandler

Obj = dict[str, Any]


def _setup() -> tuple[Obj, ExitLog, OwnedObjectHandler, RecordingQueue]:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 1}, uid="job-uid")
    exits = ExitLog("pytorch")
    handler = OwnedObjectHandler(kubeflow("PyTorchJob"), Expectations(), "pods", exits=exits)
    return job, exits, handler, RecordingQueue()


def test_a_termination_is_noted_once_across_updates_and_compaction() -> None:
    job, exits, handler, queue = _setup()
    running = make_pod(job, "Worker", 0, "Running")
    handler.on_add(running, False, queue)
    assert exits.take("job-uid") == []
    done = slim_pod(make_pod(job, "Worker", 0, "Succeeded", exit_code=0))
    handler.on_update(running, done, queue)
    # Resyncs and later updates of the finished pod are not new terminations.
    handler.on_update(done, copy.deepcopy(done), queue)
    handler.on_update(done, slim_pod(copy.deepcopy(done)), queue)
    assert exits.take("job-uid") == [("j-worker-0", 0)]
    assert exits.take("job-uid") == []
    assert len(queue.keys) == 4  # the job is still enqueued for every event


def test_a_restarted_container_terminating_again_is_a_new_termination() -> None:
    job, exits, handler, queue = _setup()
    first = make_pod(job, "Worker", 0, "Running", exit_code=1, restart_count=0)
    again = make_pod(job, "Worker", 0, "Running", exit_code=1, restart_count=1)
    handler.on_update(make_pod(job, "Worker", 0, "Running"), first, queue)
    handler.on_update(first, again, queue)
    assert exits.take("job-uid") == [("j-worker-0", 1), ("j-worker-0", 1)]


def test_initial_list_pods_are_not_noted_and_other_containers_do_not_count() -> None:
    job, exits, handler, queue = _setup()
    handler.on_add(make_pod(job, "Worker", 0, "Succeeded", exit_code=0), True, queue)
    sidecar = make_pod(job, "Master", 0, "Running")
    sidecar["status"]["containerStatuses"][0]["name"] = "sidecar"
    sidecar["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 2}}
    handler.on_update(make_pod(job, "Master", 0, "Running"), sidecar, queue)
    assert exits.take("job-uid") == [] and len(exits) == 0


def test_forget_drops_a_jobs_notes() -> None:
    job, exits, handler, queue = _setup()
    handler.on_add(make_pod(job, "Worker", 0, "Failed", exit_code=3), False, queue)
    assert len(exits) == 1
    exits.forget("job-uid")
    assert exits.take("job-uid") == []
