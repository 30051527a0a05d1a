"""The benchmarks' embedded cluster has room for every pod a scenario creates, at once: the
scenarios measure operators, not the simulated scheduler's waves."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrain.bench.harness import ClusterProcess
from kubetrain.bench.jobs import JobShape, pytorchjob
from kubetrain.cluster.nodesim.quantity import milli, pod_requests
from kubetrain.reconcilers.common.kind_adapter import DomainOptions
from kubetrain.reconcilers.kinds.pytorch import init_container


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("node_pods", [10, 1_000, 20_004])
def test_each_node_fits_node_pods_pytorch_workers_at_once(tmp_path: Path, node_pods: int) -> None:
    job = pytorchjob("j", "ns", JobShape())
    template = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]
    # A worker as kubetrain (and the reference) makes it: the bench's container plus the
    # init container that waits for the master, which is what requests cpu and memory.
    worker = {
        "spec": {**template["spec"], "initContainers": [init_container(job, DomainOptions())]}
    }
    need = pod_requests(worker)
    assert need["cpu"] > 0 and need["memory"] > 0  # else this test checks nothing

    argv = ClusterProcess(workdir=tmp_path, nodes=4, node_pods=node_pods).argv
    have = {
        "cpu": milli(_flag(argv, "--node-cpu")),
        "memory": milli(_flag(argv, "--node-memory")),
        "pods": milli(_flag(argv, "--node-pods")),
    }
    for resource, amount in need.items():
        assert have[resource] >= node_pods * amount, resource
