"""``kubetrain operator --gang-scheduler-name`` on a cluster without that flavour's PodGroup CRD:
the error names the CRD and the fix; with ``--missing-crds skip`` the operator exits (status 4:
jobs never run without their gang), with ``wait`` (the default) ``/readyz`` fails until the CRD is
installed, then jobs get their PodGroup."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
from test_operator_missing_crds import (
    CRDS,
    KUBETRAIN,
    free_port,
    job,
    operator,
    readyz,
    wait_ready,
)

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.podgroups import VOLCANO_PODGROUP_CRD
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import PODGROUPS_VOLCANO, kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.operator import EXIT_NO_PODGROUP_CRD
from kubetrain.reconcilers.api.crds import crd
from kubetrain.reconcilers.api.kinds import PYTORCHJOB

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")


async def test_skip_exits_naming_the_crd_and_the_fix() -> None:
    async with EmbeddedCluster(gang_crds=False) as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        options = ClientOptions(registry=new_registry(process_metrics=False))
        async with ApiClient(config, options) as client:
            await client.create(CRDS, crd(PYTORCHJOB))
            proc = await operator(
                cluster.kubeconfig_path,
                free_port(),
                "--enable-scheme",
                "pytorchjob",
                "--gang-scheduler-name",
                "volcano",
                "--missing-crds",
                "skip",
            )
            _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    err = stderr.decode()
    assert proc.returncode == EXIT_NO_PODGROUP_CRD, err
    assert "needs the CRD podgroups.scheduling.volcano.sh" in err, err
    assert "Install Volcano" in err and "without --gang-scheduler-name" in err
    assert "Traceback" not in err


async def test_wait_fails_readiness_until_the_crd_is_installed() -> None:
    async with EmbeddedCluster(gang_crds=False) as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        options = ClientOptions(registry=new_registry(process_metrics=False))
        async with ApiClient(config, options) as client, aiohttp.ClientSession() as session:
            await client.create(CRDS, crd(PYTORCHJOB))
            health = free_port()
            proc = await operator(
                cluster.kubeconfig_path,
                health,
                "--enable-scheme",
                "pytorchjob",
                "--gang-scheduler-name",
                "volcano",
            )
            try:
                status, text = await readyz(session, health)
                assert status == 500 and "podgroups.scheduling.volcano.sh" in text, text
                await client.create(CRDS, VOLCANO_PODGROUP_CRD)
                await wait_ready(session, health)
                await client.create(kubeflow("PyTorchJob"), job("gang"))
                for _ in range(100):
                    try:
                        await client.get(PODGROUPS_VOLCANO, "default", "gang")
                        break
                    except ApiStatusError as e:
                        if not e.is_not_found:
                            raise
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("no PodGroup for the job")
            finally:
                proc.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    err = stderr.decode()
    assert "needs the CRD podgroups.scheduling.volcano.sh" in err, err
    assert "Traceback" not in err
