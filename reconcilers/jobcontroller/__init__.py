"""The job controller: one generic reconciler that every kind uses, and its wiring.

``compute_status`` (pure, ``reconcilers/common``) decides; this package applies the decision.
One concept per file:

- ``triggers.py``: which informer events reconcile which job, at which priority;
- ``gates.py``: when a job must not be decided on yet (stale cache, pending expectations);
- ``reconciler.py``: one reconcile: gates, decide, apply in the decision's order;
- ``children.py``, ``extras.py``, ``status_writer.py``: the writes (pods and services, other
  objects, status with batching);
- ``memory.py``: everything remembered per job, forgotten in one call;
- ``gang_cache.py``: the cached PodGroup and PriorityClass values of gang scheduling;
- ``protocols.py``, ``recording.py``, ``outcome.py``: what it writes through and records to;
- ``options.py``, ``resources.py``, ``wiring.py``: knobs, resources, and ``new_job_controller``.
"""

from kubetrain.reconcilers.common.priorities import POD_PHASE_PRIORITY, TTL_PRIORITY

from .options import JobControllerOptions
from .protocols import EventSink, JobWriter
from .reconciler import JobReconciler, JobSpecError
from .resources import HORIZONTAL_POD_AUTOSCALERS, OWNED_SELECTOR, ROLEBINDINGS, ROLES
from .triggers import JobHandler, OwnedObjectHandler
from .wiring import new_job_controller

__all__ = [
    "HORIZONTAL_POD_AUTOSCALERS",
    "OWNED_SELECTOR",
    "POD_PHASE_PRIORITY",
    "ROLEBINDINGS",
    "ROLES",
    "TTL_PRIORITY",
    "EventSink",
    "JobControllerOptions",
    "JobHandler",
    "JobReconciler",
    "JobSpecError",
    "JobWriter",
    "OwnedObjectHandler",
    "new_job_controller",
]
