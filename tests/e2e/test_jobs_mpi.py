"""MPIJob end to end: launcher and worker pods, the ConfigMap (hostfile, kubexec.sh), the
launcher ServiceAccount/Role/RoleBinding, the kubectl-delivery init container, conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, env_of, job_manifest, open_env

from kubetrain.informers.resource import CONFIGMAPS, SERVICEACCOUNTS
from kubetrain.reconcilers.jobcontroller import ROLEBINDINGS, ROLES

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "MPIJob"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("mpijob",))
        yield e


async def test_mpi_launcher_workers_objects_to_succeeded(env: Env) -> None:
    ns = await env.namespace("mpi")
    await env.create_job(
        job_manifest(
            KIND,
            "mpiReplicaSpecs",
            "mpi",
            {"Launcher": 1, "Worker": 2},
            name="m",
            namespace=ns,
            run_seconds=0.5,
            slotsPerWorker=1,
        )
    )
    job = await env.wait_condition(KIND, ns, "m", "Succeeded")
    assert job["status"]["replicaStatuses"]["Launcher"]["succeeded"] == 1
    pods = await env.pods(ns)
    assert [p["metadata"]["name"] for p in pods] == ["m-launcher", "m-worker-0", "m-worker-1"]
    launcher = pods[0]
    e = env_of(launcher, "mpi")
    assert e["OMPI_MCA_plm_rsh_agent"] == "/etc/mpi/kubexec.sh"
    assert e["OMPI_MCA_orte_default_hostfile"] == "/etc/mpi/hostfile"
    assert [c["name"] for c in launcher["spec"]["initContainers"]] == ["kubectl-delivery"]
    assert launcher["spec"]["serviceAccountName"] == "m-launcher"

    cm = await env.client.get(CONFIGMAPS, ns, "m-config")
    assert cm["data"]["hostfile"] == "m-worker-0 slots=1\nm-worker-1 slots=1\n"
    assert "kubexec.sh" in cm["data"]
    assert cm["metadata"]["ownerReferences"][0]["kind"] == KIND
    assert (await env.client.get(SERVICEACCOUNTS, ns, "m-launcher"))["metadata"]["name"]
    role = await env.client.get(ROLES, ns, "m-launcher")
    assert role["rules"][1]["resourceNames"] == ["m-worker-0", "m-worker-1"]
    binding = await env.client.get(ROLEBINDINGS, ns, "m-launcher")
    assert binding["roleRef"]["name"] == "m-launcher"
