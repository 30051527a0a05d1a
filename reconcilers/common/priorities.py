"""Work-queue priorities of job reconciles, highest first (DESIGN.md's queue contract).

A finished job whose TTL falls due, then a job whose pod changed phase, then new work, then
initial-list and resync events. The pure layer puts the priority of a requeue into its decision;
the event handlers raise the priority of the events that need it.
"""

from __future__ import annotations

from kubetrain.engine.queue import LOW_PRIORITY, NORMAL_PRIORITY

__all__ = ["LOW_PRIORITY", "NORMAL_PRIORITY", "POD_PHASE_PRIORITY", "TTL_PRIORITY"]

#: A job whose pod changed phase (Running, Succeeded, Failed): its status write (one request) is
#: not queued behind a burst of new jobs' pod creations (each many requests). Bounded by the
#: pods' transitions, so creations never starve.
POD_PHASE_PRIORITY = 10

#: A finished job's TTL requeue: the deletion is a promise on the clock and costs one request.
#: Bounded: one requeue per finished job with a TTL, and only when it falls due. (An event that
#: makes the waiting requeue ready early shares its priority, as in controller-runtime's queue;
#: that reconcile is one read of the cache and requeues the rest.)
TTL_PRIORITY = 20
