"""Controller parts without a cluster: the phase gauge, the pod transform, operator flags."""

from __future__ import annotations

import argparse

import pytest

from kubetrain.engine.metrics import new_registry
from kubetrain.operator import OperatorOptions, add_operator_flags, options_from_args
from kubetrain.reconcilers.common.compact import slim_pod
from kubetrain.reconcilers.metrics import JobMetrics, JobPhaseGauge, job_phase


def job(name: str, *conds: str) -> dict:
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


def test_slim_pod_keeps_what_the_reconciler_reads() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"a": "b"},
            "annotations": {"big": "x" * 1000},
            "managedFields": [{}],
            "ownerReferences": [{"uid": "u"}],
        },
        "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "podIP": "1.2.3.4",
            "containerStatuses": [
                {
                    "name": "c",
                    "restartCount": 2,
                    "state": {"terminated": {"exitCode": 137}},
                    "image": "i",
                    "imageID": "sha",
                }
            ],
        },
    }
    slim = slim_pod(pod)
    assert "spec" not in slim and "annotations" not in slim["metadata"]
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["ownerReferences"] == [{"uid": "u"}]
    assert slim["status"] == {
        "phase": "Failed",
        "reason": "Evicted",
        "containerStatuses": [
            {"name": "c", "restartCount": 2, "state": {"terminated": {"exitCode": 137}}}
        ],
    }


def test_operator_flags_defaults_are_the_reference_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFLOW_NAMESPACE", "kubeflow")
    parser = argparse.ArgumentParser()
    add_operator_flags(parser)
    opts = options_from_args(parser.parse_args([]))
    assert (opts.kube_api_qps, opts.kube_api_burst) == (20.0, 30)
    # Not the reference's 1: reconciles are coroutines (see OperatorOptions.controller_threads).
    assert (opts.controller_threads, opts.shards, opts.create_concurrency) == (128, 1, 64)
    assert opts.namespace == "kubeflow"
    assert (opts.metrics_bind_address, opts.health_probe_bind_address) == (":8080", ":8081")
    assert opts.webhook_server_port == 9443
    assert len(opts.kinds) == 6
    opts = options_from_args(
        parser.parse_args(["--enable-scheme", "PyTorchJob", "--enable-scheme", "mpijob"])
    )
    assert [k.kind for k in opts.kinds] == ["PyTorchJob", "MPIJob"]


def test_unknown_scheme_is_rejected_naming_it() -> None:
    with pytest.raises(ValueError, match="sparkjob"):
        OperatorOptions(enable_schemes=("sparkjob",))
