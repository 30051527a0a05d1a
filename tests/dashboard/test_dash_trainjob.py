"""A TrainJob on the dashboard (embedded cluster with JobSet and the Trainer CRDs): its row, its
pods found by their JobSet labels, and suspend through ``spec.suspend``."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from jobkit_e2e import SIM, Env, poll
from test_dash_http import Running, row_of, start_dashboard, stop_dashboard
from trainjob_e2e import open_trainer_env, trainjob

from kubetrain.reconcilers.trainer.resources import TRAINJOBS

# http_api: also runs under --apiserver=real (the real JobSet controller next to the real plane).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def dash(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    async for env in open_trainer_env(request, tmp_path_factory):
        running = await start_dashboard(env)
        yield running
        await stop_dashboard(running)


async def test_trainjob_row_detail_and_suspend(dash: Running) -> None:
    env: Env = dash.env
    ns = await env.namespace("tj")
    pod_template = {"metadata": {"annotations": {SIM + "run-seconds": "600"}}}
    node = {"name": "node", "template": {"spec": {"template": pod_template}}}
    job = trainjob("tj", ns, trainer={"numNodes": 2})
    job["spec"]["runtimePatches"] = [  # its pods run on until the test ends
        {
            "manager": "example.com/test",
            "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [node]}}},
        }
    ]
    await env.client.create(TRAINJOBS, job)

    async def running() -> dict[str, Any] | None:
        row = await row_of(dash, ns, "tj")
        return row if row and row["ready"] == 2 else None

    row = await poll(running, timeout=30, what="the TrainJob's two pods ready")
    assert row["kind"] == "TrainJob" and row["replicas"] == 2
    status, detail = await dash.get(f"/api/jobs/TrainJob/{ns}/tj")
    assert status == 200, detail
    assert [(t["type"], t["replicas"]) for t in detail["replicaTypes"]] == [("node", 2)]
    pods = [p["name"] for t in detail["replicaTypes"] for p in t["pods"]]
    assert len(pods) == 2 and all(p.startswith("tj-") for p in pods)
    status, answer = await dash.send("POST", f"/api/jobs/TrainJob/{ns}/tj/suspend")
    assert status == 200, answer
    stored = await env.client.get(TRAINJOBS, ns, "tj")
    assert stored["spec"]["suspend"] is True
