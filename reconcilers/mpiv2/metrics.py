"""mpi-operator's own metric names, for the dashboards and alerts written for mpi-operator.

The v2beta1 controller counts its jobs twice: in kubetrain's ``training_operator_jobs_*``
families with ``framework="mpi"`` (``reconcilers/metrics.py``: by namespace, with the latency
histograms every kind has) and in mpi-operator v0.8.2's unlabelled counters below. Its
``mpi_operator_job_info{launcher,namespace}`` gauge is left out on purpose: mpi-operator never
deletes a series of it, so it grows by one series per job for ever.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter

__all__ = ["MPIOperatorMetrics"]


class MPIOperatorMetrics:
    """``mpi_operator_jobs_{created,successful,failed}_total`` on one registry (one instance
    per registry: a second raises, as for every prometheus-client family)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        self.created = Counter(
            "mpi_operator_jobs_created_total", "Counts number of MPI jobs created", registry=reg
        )
        self.successful = Counter(
            "mpi_operator_jobs_successful_total",
            "Counts number of MPI jobs successful",
            registry=reg,
        )
        self.failed = Counter(
            "mpi_operator_jobs_failed_total", "Counts number of MPI jobs failed", registry=reg
        )
