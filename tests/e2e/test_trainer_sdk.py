"""The ``kubeflow`` SDK (0.5.0, ``kubeflow.trainer``) unchanged against kubetrain: its
``TrainerClient`` lists the built-in runtimes, trains a Python function with ``CustomTrainer`` on
``torch-distributed``, waits for it, reads its steps and logs, lists and deletes it. On the
embedded cluster and, in the conformance tier, on a real kube-apiserver with the real JobSet
controller (there the logs are not read: the simulated kubelets keep them in the embedded API
server only). The SDK is the sync ``kubernetes`` client, so it runs in a thread beside the
cluster.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from jobkit_e2e import Env, poll
from trainjob_e2e import open_trainer_env

from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.resources import JOBSETS, TRAINJOBS
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

trainer = pytest.importorskip("kubeflow.trainer")

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory, nodes=4):
        yield e


def sdk_session(kubeconfig: str, read_logs: bool) -> dict[str, Any]:
    """What a user's script does with the SDK; everything it saw, for the test to judge."""
    from kubeflow.common.types import KubernetesBackendConfig
    from kubeflow.trainer import CustomTrainer, TrainerClient

    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    sdk_logger = logging.getLogger("kubeflow")
    sdk_logger.addHandler(handler)
    try:
        client = TrainerClient(KubernetesBackendConfig(config_file=kubeconfig, namespace="default"))
    finally:
        sdk_logger.removeHandler(handler)
    seen: dict[str, Any] = {"runtimes": sorted(r.name for r in client.list_runtimes())}
    seen["construction_warnings"] = warnings

    def train_fn() -> None:
        print("hello from training")

    runtime = client.get_runtime("torch-distributed")
    seen["framework"] = runtime.trainer.framework
    name = client.train(runtime=runtime, trainer=CustomTrainer(func=train_fn, num_nodes=2))
    seen["name"] = name
    job = client.wait_for_job_status(name, status={"Complete"}, timeout=90, polling_interval=1)
    seen["status"] = job.status
    seen["steps"] = sorted((s.name, s.status) for s in job.steps)
    seen["listed"] = [j.name for j in client.list_jobs()]
    if read_logs:  # the simulated kubelets keep pod logs in the embedded API server only
        seen["logs"] = list(client.get_job_logs(name))
    client.delete_job(name)
    return seen


async def test_the_kubeflow_sdk_trains_waits_reads_logs_and_deletes(env: Env) -> None:
    seen = await asyncio.to_thread(sdk_session, env.cluster.kubeconfig_path, not env.real)
    assert seen["runtimes"] == sorted(
        r["metadata"]["name"] for r in builtin_runtimes() if r["kind"] == "ClusterTrainingRuntime"
    )
    # the control plane's version is published (kubeflow-system/kubeflow-trainer-public)
    assert seen["construction_warnings"] == []
    assert seen["framework"] == "torch"
    name = seen["name"]
    assert re.fullmatch(r"[a-z][0-9a-f]{11}", name), name  # the SDK's own naming
    assert seen["status"] == "Complete"
    assert seen["steps"] == [("node-0", "Succeeded"), ("node-1", "Succeeded")]
    assert name in seen["listed"]
    if not env.real:
        assert seen["logs"] and all(isinstance(line, str) for line in seen["logs"])

    async def gone() -> bool:
        try:
            await env.client.get(TRAINJOBS, "default", name)
        except ApiStatusError as e:
            return e.is_not_found
        return False

    await poll(gone, timeout=30, what="the TrainJob deleted by the SDK")

    # ... and its JobSet with it (owner reference; the garbage collector)
    async def jobset_gone() -> bool:
        try:
            await env.client.get(JOBSETS, "default", name)
        except ApiStatusError as e:
            return e.is_not_found
        return False

    # kube's garbage collector learns a new CRD (JobSet's, seconds old on the real tier) at its
    # next discovery sync, every 30 s, before it collects the JobSet
    await poll(jobset_gone, timeout=90, what="the JobSet garbage-collected")
