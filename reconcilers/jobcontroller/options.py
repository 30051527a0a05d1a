"""``JobControllerOptions``: the knobs of one job controller, each with a usable default."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.reconcilers.common.expectations import DEFAULT_EXPECTATIONS_TIMEOUT
from kubetrain.reconcilers.common.kind_adapter import DomainOptions

__all__ = ["JobControllerOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobControllerOptions:
    """Knobs of one job controller; every default is usable as is."""

    create_concurrency: int = 64
    """Pod/service creations and deletions in flight at once across all reconciles of the
    controller (one semaphore, not one per reconcile: with many concurrent reconciles this is
    what bounds the requests queued at the API server, so a status write is not answered after
    thousands of creations). The API client's QPS/burst still bounds the rate. Status writes
    and events do not take it."""
    expectations_timeout: float = DEFAULT_EXPECTATIONS_TIMEOUT
    """Seconds after which an unobserved creation/deletion stops gating the job (lost event)."""
    domain: DomainOptions = field(default_factory=DomainOptions)
    """Operator-wide settings of the pure domain (init container image, cluster domain...)."""
    field_manager: str = "kubetrain"
    """``fieldManager`` of every write."""
    stale_job_requeue: float = 5.0
    """Seconds after which a job whose cache has not shown our last write yet is looked at
    again anyway (the job's watch event normally comes first and enqueues it at once)."""
    status_batch_seconds: float = 1.0
    """A status change that only moves replica counts (``replicaStatuses``; no condition, start
    or completion time) within this many seconds of the job's last status write waits for the
    end of that window and is then written once with whatever the counts are by then: pods that
    start one after another cost one write, not one each (as kube's Job controller batches pod
    updates, ``syncJobBatchPeriod``). Conditions are never delayed. 0: write every change at
    once."""
    clock: Clock = REAL_CLOCK
    """Time of conditions, TTL, deadlines, status batching and expectations; tests pass a
    ``FakeClock`` (the same one as the engine's, so one clock drives the operator)."""

    def __post_init__(self) -> None:
        if self.create_concurrency < 1:
            raise ValueError(
                "JobControllerOptions.create_concurrency must be >= 1, "
                f"got {self.create_concurrency}"
            )
        if self.status_batch_seconds < 0:
            raise ValueError(
                "JobControllerOptions.status_batch_seconds must be >= 0, "
                f"got {self.status_batch_seconds}"
            )
