"""The backlog scenario's finished jobs, with their Succeeded pods or with the pods cleaned
(``--no-backlog-pods``, the large preset's), built through the API of the embedded cluster."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.bench.cli import CRDS
from kubetrain.bench.jobs import PYTORCHJOBS, JobShape, create_namespace
from kubetrain.bench.scenarios.backlog import create_backlog
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import PODS
from kubetrain.reconcilers.api.crds import all_crds


@pytest.mark.parametrize("with_pods", [True, False], ids=["pods", "pods-cleaned"])
async def test_finished_jobs_with_or_without_their_pods(cluster: Any, with_pods: bool) -> None:
    config = await load_kubeconfig(cluster.kubeconfig_path)
    async with ApiClient(config, ClientOptions(registry=CollectorRegistry())) as client:
        for crd in all_crds():
            await client.create_if_absent(CRDS, crd)
        await create_namespace(client, "b")
        shape = JobShape()
        made = await create_backlog(
            client, "b", jobs=3, shape=shape, concurrency=2, say=lambda _: None,
            with_pods=with_pods,
        )  # fmt: skip
        jobs = await client.list_all(PYTORCHJOBS, "b")
        pods = await client.list_all(PODS, "b")
    assert made == 3 * (1 + (shape.pods if with_pods else 0))
    assert len(jobs) == 3 and len(pods) == (3 * shape.pods if with_pods else 0)
    for job in jobs:
        assert job["status"]["conditions"][-1]["type"] == "Succeeded"
        policy = job["spec"]["runPolicy"].get("cleanPodPolicy")
        assert policy == ("None" if with_pods else "All")
