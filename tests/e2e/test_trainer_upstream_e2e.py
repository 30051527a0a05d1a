"""Kubeflow Trainer's own end-to-end suite, run against kubetrain's TrainJob controller.

The suite is the ``test/e2e`` package of ``github.com/kubeflow/trainer/v2`` v2.0.0 (the only
version the Go module proxy serves), compiled unchanged by ``tools/conformance/build_trainer.sh``
into ``trainer-e2e.test``. It creates, in namespaces of its own, a TrainJob on the
``torch-distributed`` runtime and one on ``mpi-distributed`` with controller-runtime's client, and
expects each to reach ``Complete`` with JobSet's reason and message (``AllJobsCompleted``, "jobset
completed successfully"). kubetrain serves Trainer v2.3.0's runtimes, in which ``mpi-distributed``
became ``deepspeed-distributed`` and ``mlx-distributed``; the v2.0.0 one is installed from the same
module, as that release's manifests install it.

On the embedded cluster, and in the conformance tier on a real kube-apiserver with the real
JobSet controller (``open_trainer_env``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conformance.trainer import TRAINER_VERSION, find_trainer, trainer_root, trainer_runtimes
from jobkit_e2e import Env
from trainjob_e2e import open_trainer_env

from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.resources import CLUSTER_TRAINING_RUNTIMES

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

SUITE = trainer_root() / "bin" / "trainer-e2e.test"
V200_ONLY_RUNTIME = "mpi-distributed"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    found = find_trainer()
    if found is None or not SUITE.is_file():
        pytest.skip(
            f"Trainer {TRAINER_VERSION}'s e2e suite is not built in {trainer_root()}: run "
            "tools/conformance/build_trainer.sh (CI builds it before the tests)"
        )
    (runtime,) = [
        r for r in trainer_runtimes(found[1]) if r["metadata"]["name"] == V200_ONLY_RUNTIME
    ]
    async for e in open_trainer_env(request, tmp_path_factory):
        try:
            await e.client.create(CLUSTER_TRAINING_RUNTIMES, runtime)
        except ApiStatusError as err:
            if not err.is_already_exists:
                raise
        yield e


@pytest.mark.timeout(300)
async def test_trainers_own_e2e_suite_passes_against_kubetrain(env: Env, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(SUITE),
        "-test.v",
        "-ginkgo.v",
        "-ginkgo.no-color",
        "-ginkgo.timeout=4m",
        cwd=tmp_path,
        env={**os.environ, "KUBECONFIG": str(env.cluster.kubeconfig_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=280)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "Ran 2 of 2 Specs" in text, text[-3000:]
    assert "SUCCESS!" in text
