"""``kubetrain jobs list`` and ``kubetrain jobs wait`` (``kubetrain/jobs_cli.py``) as a user or a
script runs them: the installed ``kubetrain`` entry point in a subprocess against the embedded
cluster (and, under ``--apiserver=real``, a real kube-apiserver with the real JobSet) with the
operator and TrainJobs, and its output and exit codes judged.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from jobkit_e2e import SIM, Env, job_manifest
from trainjob_e2e import open_trainer_env, trainjob

from kubetrain.informers.resource import kubeflow
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.trainer.resources import TRAINJOBS

KUBETRAIN = shutil.which("kubetrain", path=str(Path(sys.executable).parent)) or ""

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.http_api,
    pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory):
        yield e


async def jobs(env: Env, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [KUBETRAIN, "jobs", "--kubeconfig", env.cluster.kubeconfig_path, *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=timeout
    )


def pytorchjob(ns: str, name: str, *, run_seconds: float, exit_code: int = 0) -> dict[str, object]:
    kind = BY_KIND["PyTorchJob"]
    annotations = {"Master": {SIM + "exit-code": str(exit_code)}} if exit_code else None
    return job_manifest(
        kind.kind,
        kind.replica_field,
        kind.default_container,
        {"Master": 1, "Worker": 1},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
        annotations=annotations,
        run_policy={"backoffLimit": 0},
        restart_policy="Never",
    )


async def test_wait_exits_0_1_2_3_and_list_shows_every_kind(env: Env) -> None:
    ns = await env.namespace("cli")
    await env.client.create(kubeflow("PyTorchJob"), pytorchjob(ns, "good", run_seconds=0.5))
    await env.client.create(
        kubeflow("PyTorchJob"), pytorchjob(ns, "bad", run_seconds=0.3, exit_code=3)
    )
    await env.client.create(kubeflow("PyTorchJob"), pytorchjob(ns, "long", run_seconds=600))
    await env.client.create(TRAINJOBS, trainjob("tj", ns, trainer={"numNodes": 2}))

    good = await jobs(env, "wait", "pytorchjob/good", "-n", ns, "--timeout", "60")
    assert good.returncode == 0, good.stderr
    assert "PyTorchJob good: Succeeded" in good.stderr  # the state, as it changes
    tj = await jobs(env, "wait", "trainjob/tj", "-n", ns, "--timeout", "60")
    assert tj.returncode == 0, tj.stderr
    bad = await jobs(env, "wait", "pytorchjobs/bad", "-n", ns, "--timeout", "60")
    assert bad.returncode == 1, bad.stderr
    assert "Failed" in bad.stderr
    failed = await jobs(env, "wait", "pytorchjob/bad", "-n", ns, "--for", "Failed")
    assert failed.returncode == 0, failed.stderr
    running = await jobs(env, "wait", "pytorchjob/long", "-n", ns, "--for", "Running")
    assert running.returncode == 0, running.stderr
    timed_out = await jobs(env, "wait", "pytorchjob/long", "-n", ns, "--timeout", "1")
    assert timed_out.returncode == 2
    assert "timed out after 1 s waiting for Succeeded" in timed_out.stderr
    missing = await jobs(env, "wait", "pytorchjob/nope", "-n", ns, "--timeout", "1")
    assert missing.returncode == 3 and "not found" in missing.stderr
    unknown = await jobs(env, "wait", "nosuchkind/x", "-n", ns)
    assert unknown.returncode == 3 and "KIND one of" in unknown.stderr

    listed = await jobs(env, "list", "-n", ns, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)["items"]}
    assert {k: r["state"] for k, r in rows.items()} == {
        ("PyTorchJob", "bad"): "Failed",
        ("PyTorchJob", "good"): "Succeeded",
        ("PyTorchJob", "long"): "Running",
        ("TrainJob", "tj"): "Succeeded",
    }
    assert rows[("PyTorchJob", "good")]["replicas"] == 2
    assert rows[("TrainJob", "tj")]["replicas"] == 2
    assert all(r["namespace"] == ns and r["duration"] is not None for r in rows.values())

    table = await jobs(env, "list", "-A", "-o", "wide")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "KIND", "NAME", "STATE", "AGE", "DURATION", "REPLICAS"]
    ours = [line.split() for line in lines[1:] if line.startswith(ns + " ")]
    assert [(c[1], c[2], c[3]) for c in ours] == [
        ("PyTorchJob", "bad", "Failed"),
        ("PyTorchJob", "good", "Succeeded"),
        ("PyTorchJob", "long", "Running"),
        ("TrainJob", "tj", "Succeeded"),
    ]
    as_yaml = await jobs(env, "list", "-n", ns, "-o", "yaml")
    assert len(yaml.safe_load(as_yaml.stdout)["items"]) == 4
    empty = await jobs(env, "list", "-n", "no-such-namespace")
    assert empty.returncode == 0 and "No training jobs found" in empty.stderr
