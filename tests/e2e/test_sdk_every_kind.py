"""The Kubeflow Training SDK (``kubeflow-training`` 1.9, ``TrainingClient``) drives a job of every
kind through the operator: create_job, wait_for_job_conditions, is_job_succeeded,
get_job_pod_names (the master-role pod ``get_job_logs`` reads), delete_job; and a PyTorchJob built
by the SDK itself (``create_job(name=, base_image=, num_workers=)``). These run on the embedded
cluster and, under ``--apiserver=real``, on a real control plane. ``get_job_logs`` is checked on
the embedded cluster only: pod logs come from a kubelet, and the node simulator's log sink exists
only on the embedded API server.

The jobs are ``kubetrain up``'s examples (the packaged YAML, loaded as dicts and turned into the
SDK's models the way the SDK decodes its own responses), with short simulated run times and a known
log line. The SDK is synchronous; it runs in a thread while the operator runs on the event loop.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import SIM, Env, open_env

from kubetrain.example_jobs import load_examples
from kubetrain.reconcilers.api.kinds import BY_KIND

training = pytest.importorskip("kubeflow.training")
sdk_utils = pytest.importorskip("kubeflow.training.utils.utils")

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
# the kubeflow.org/v1 examples (the TrainJob example is tested in test_trainjobs.py and up's)
EXAMPLES = {job.kind: job for job in load_examples() if job.kind != "TrainJob"}
WAIT_TIMEOUT = 30  # seconds, per job

#: The pod ``get_job_logs`` reads by default (label ``job-role=master``), per the reference's
#: master-role rules: Chief/Master, else TF/JAX worker-0; MPI's launcher. Paddle gives the role only
#: to a Master replica, and the example has Workers only: the SDK's default logs are empty, as
#: against the reference operator (``is_master=False`` reads them).
MASTER_POD = {
    "JAXJob": "jaxjob-simple-worker-0",
    "MPIJob": "tensorflow-mnist-launcher",
    "PaddleJob": None,
    "PyTorchJob": "pytorch-simple-master-0",
    "TFJob": "tfjob-simple-worker-0",
    "XGBoostJob": "xgboost-dist-iris-master-0",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator()
        yield e


def quick_example(kind: str, namespace: str, log_line: str) -> Obj:
    """The packaged example of ``kind`` in ``namespace``: pods run 0.5 s and log ``log_line``."""
    manifest = copy.deepcopy(EXAMPLES[kind].manifest)
    manifest["metadata"]["namespace"] = namespace
    # The SDK's models require spec.runPolicy (the API does not); the SDK itself sends {}.
    manifest["spec"].setdefault("runPolicy", {})
    replica_specs = manifest["spec"][BY_KIND[kind].replica_field]
    for spec in replica_specs.values():
        annotations = spec["template"].setdefault("metadata", {}).setdefault("annotations", {})
        annotations[SIM + "run-seconds"] = "0.5"
        annotations[SIM + "log"] = log_line
    return manifest


def sdk_model(tc: Any, manifest: Obj) -> Any:
    """``manifest`` as the SDK's model object (``KubeflowOrgV1PyTorchJob``, ...), decoded the way
    the SDK decodes the API server's answers; ``create_job`` accepts only these."""
    model = getattr(training.models, f"KubeflowOrgV1{manifest['kind']}")
    return tc.api_client.deserialize(sdk_utils.FakeResponse(manifest), model)


def run_through_sdk(
    kubeconfig: str, namespace: str, kind: str, job: Any, name: str, *, read_logs: bool
) -> Obj:
    """What a user's notebook does: create, wait, read logs (when ``read_logs``), check, delete.
    Runs in a thread."""
    tc = training.TrainingClient(config_file=kubeconfig, namespace=namespace, job_kind=kind)
    if job is None:  # the SDK builds the job from an image (PyTorchJob only)
        tc.create_job(name=name, base_image="docker.io/busybox:1", num_workers=2)
    else:
        tc.create_job(job=sdk_model(tc, job) if isinstance(job, dict) else job)
    finished = tc.wait_for_job_conditions(
        name, expected_conditions={"Succeeded"}, wait_timeout=WAIT_TIMEOUT, polling_interval=1
    )
    logs: dict[str, str] = {}
    all_logs: dict[str, str] = {}
    if read_logs:
        logs, _ = tc.get_job_logs(name)
        all_logs, _ = tc.get_job_logs(name, is_master=False)
    succeeded = tc.is_job_succeeded(name)
    conditions = [c.type for c in tc.get_job_conditions(name) if c.status == "True"]
    pods = tc.get_job_pod_names(name, is_master=False)
    master_pods = tc.get_job_pod_names(name, is_master=True)
    tc.delete_job(name)
    return {
        "finished": finished,
        "logs": logs,
        "all_logs": all_logs,
        "succeeded": succeeded,
        "conditions": conditions,
        "pods": pods,
        "master_pods": master_pods,
    }


async def wait_gone(env: Env, kind: str, namespace: str, name: str) -> None:
    for _ in range(100):
        if await env.get_job(kind, namespace, name) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{kind} {namespace}/{name} still exists after delete_job")


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
async def test_sdk_runs_the_example_of(env: Env, kind: str) -> None:
    ns = await env.namespace(kind.lower())
    manifest = quick_example(kind, ns, f"hello from the {kind} example")
    name = manifest["metadata"]["name"]

    got = await asyncio.to_thread(
        run_through_sdk, env.cluster.kubeconfig_path, ns, kind, manifest, name, read_logs=False
    )

    assert got["finished"].metadata.name == name
    assert got["succeeded"] is True
    assert "Succeeded" in got["conditions"]
    master = MASTER_POD[kind]
    assert got["master_pods"] == ([master] if master else [])
    assert master is None or master in got["pods"]
    await wait_gone(env, kind, ns, name)


@pytest.mark.embedded_only(
    reason="pod logs are a kubelet's: the real tier has no kubelet, and the node simulator's log "
    "sink (POST /apis/sim.kubetrain.dev/v1/.../pods/<name>/log) exists only on the embedded server"
)
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
async def test_sdk_reads_the_logs_of_the_example_of(env: Env, kind: str) -> None:
    ns = await env.namespace(f"logs-{kind.lower()}")
    log_line = f"hello from the {kind} example"
    manifest = quick_example(kind, ns, log_line)
    name = manifest["metadata"]["name"]

    got = await asyncio.to_thread(
        run_through_sdk, env.cluster.kubeconfig_path, ns, kind, manifest, name, read_logs=True
    )

    assert got["succeeded"] is True
    # get_job_logs reads the master-role pod's default container; every pod logged our line.
    master = MASTER_POD[kind]
    assert list(got["logs"]) == ([master] if master else []), got["logs"]
    if master:
        assert log_line in got["logs"][master]
    assert set(got["all_logs"]) == set(got["pods"]) and len(got["pods"]) >= 1
    for pod_name, text in got["all_logs"].items():
        assert log_line in text, (pod_name, text)
    await wait_gone(env, kind, ns, name)


async def test_sdk_built_pytorchjob(env: Env) -> None:
    ns = await env.namespace("sdk-built")
    got = await asyncio.to_thread(
        run_through_sdk,
        env.cluster.kubeconfig_path,
        ns,
        "PyTorchJob",
        None,
        "sdk-pytorch",
        read_logs=False,
    )
    assert got["succeeded"] is True
    assert sorted(got["pods"]) == ["sdk-pytorch-master-0", "sdk-pytorch-worker-0"]
    assert got["master_pods"] == ["sdk-pytorch-master-0"]
    await wait_gone(env, "PyTorchJob", ns, "sdk-pytorch")
