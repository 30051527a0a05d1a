"""The batch/v1 Job controller (kube v1.36 ``pkg/controller/job``), one concept per file:

- ``constants.py``: labels, annotations, the finalizer, condition reasons and messages;
- ``intervals.py``: completed/failed indexes as ordered intervals ("1,3-5");
- ``pods.py``: what a pod is to the controller (active, terminating, failed, ready, its index,
  when it finished); ``podtemplate.py``: the pod a Job creates;
- ``failure_policy.py`` (``podFailurePolicy``), ``success_policy.py`` (``successPolicy``),
  ``backoff.py`` (pod re-creation delay after failures), ``conditions.py``;
- ``expectations.py``: creations/deletions and finalizer removals not yet seen in the cache;
- ``sync.py`` (one Job: counting, terminal conditions, status) with ``manage.py`` (creating and
  deleting pods) and ``tracking.py`` (the tracking finalizer and ``uncountedTerminatedPods``);
- ``controller.py``: informers, event handlers, queues and the orphan-pod worker.
"""

from __future__ import annotations

from .controller import JobController, JobControllerOptions

__all__ = ["JobController", "JobControllerOptions"]
