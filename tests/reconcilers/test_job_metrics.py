"""The job metrics (``reconcilers/metrics.py``): a job's one phase, and the phase gauge kept from
job informer events."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.engine.metrics import new_registry
from kubetrain.reconcilers.metrics import JobMetrics, JobPhaseGauge, job_phase


def job(name: str, *conds: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "status": {"conditions": [{"type": c, "status": "True"} for c in conds]},
    }


def test_job_phase_prefers_finished_then_last_true() -> None:
    assert job_phase(job("a")) == "Pending"
    assert job_phase(job("a", "Created", "Running")) == "Running"
    assert job_phase(job("a", "Created", "Succeeded", "Running")) == "Succeeded"


def test_phase_gauge_moves_jobs_between_series() -> None:
    registry = new_registry(process_metrics=False)
    gauge = JobPhaseGauge(JobMetrics(registry), framework="pytorch")

    def value(phase: str) -> float | None:
        return registry.get_sample_value("kubetrain_jobs", {"framework": "pytorch", "phase": phase})

    gauge.on_add(job("a", "Created"), True)
    gauge.on_add(job("b", "Created"), False)
    gauge.on_update(job("a", "Created"), job("a", "Created", "Running"))
    assert (value("Created"), value("Running")) == (1, 1)
    gauge.on_update(job("a", "Created", "Running"), job("a", "Created", "Running"))
    assert value("Running") == 1
    gauge.on_delete(job("a", "Created", "Running"))
    gauge.on_delete(job("b", "Created"))
    assert (value("Created"), value("Running")) == (0, 0)
