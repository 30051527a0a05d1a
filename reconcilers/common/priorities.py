"""Work-queue priorities of job reconciles, highest first (DESIGN.md's queue contract).

A finished job whose TTL falls due, then a job whose pod changed phase, then new work, then
initial-list and resync events. The pure layer puts the priority of a requeue into its decision;
the event handlers raise the priority of the events that need it.

The same order holds one level down, for API requests waiting for a slot of the client's
in-flight limit (``engine.request_priority``): a job's deletion, then status writes, then the
rest (pod and service creations at 0).
"""

from __future__ import annotations

from kubetrain.engine.queue import LOW_PRIORITY, NORMAL_PRIORITY

__all__ = [
    "DELETE_JOB_REQUEST_PRIORITY",
    "LOW_PRIORITY",
    "NORMAL_PRIORITY",
    "POD_PHASE_PRIORITY",
    "STATUS_REQUEST_PRIORITY",
    "TTL_PRIORITY",
]

#: A job whose pod changed phase (Running, Succeeded, Failed): its status write (one request) is
#: not queued behind a burst of new jobs' pod creations (each many requests). Bounded by the
#: pods' transitions, so creations never starve.
POD_PHASE_PRIORITY = 10

#: A finished job's TTL requeue: the deletion is a promise on the clock and costs one request.
#: Bounded: one requeue per finished job with a TTL, and only when it falls due. (An event that
#: makes the waiting requeue ready early shares its priority, as in controller-runtime's queue;
#: that reconcile is one read of the cache and requeues the rest.)
TTL_PRIORITY = 20

#: A job's deletion when its TTL is due, as an API request: ahead of everything else waiting for
#: the client's in-flight limit. Bounded: one per finished job.
DELETE_JOB_REQUEST_PRIORITY = TTL_PRIORITY

#: A job's status write, as an API request: ahead of pod and service creations (priority 0),
#: which come many per job, so a finished job's Succeeded condition (and the TTL clock a user
#: sees start) does not wait for a burst of new jobs' pods. Bounded: one write per status
#: change, batched.
STATUS_REQUEST_PRIORITY = POD_PHASE_PRIORITY
