"""TrainJob progress end to end (KEP-2779): the operator injects the status server's env, token
volume and CA ConfigMap into the trainer job; a trainer, here the Kubeflow SDK's own
``update_trainjob_status`` run with those three variables, POSTs its progress over HTTPS with a
service-account token minted for the TrainJob's audience (TokenRequest); the operator reviews
the token (TokenReview with that audience) and writes ``status.trainerStatus``, which
``kubectl get trainjob`` shows in its Progress % and ETA columns. A token for another audience
is refused. On the embedded cluster (``cluster/apiserver/tokenrequest.py`` issues and reviews
the tokens) and, under ``--apiserver=real``, on a real kube-apiserver (which does both itself).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import requests
import yaml
from jobkit_e2e import Env, poll
from trainjob_e2e import get, open_trainer_env, run_kubectl, trainjob

from kubetrain.informers.resource import CONFIGMAPS, SECRETS, SERVICEACCOUNTS
from kubetrain.reconcilers.trainer.plugins.trainjob_status import status_path, token_audience
from kubetrain.reconcilers.trainer.resources import JOBSETS, TRAINJOBS
from kubetrain.up import free_port

sdk_utils = pytest.importorskip("kubeflow.trainer.backends.kubernetes.utils")

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

OPERATOR_NS = "default"  # exists on both tiers: the rotator keeps its Secret there
PORT = 0
"""The webhook server's port, chosen when the operator starts (not at import: under xdist a
port picked at collection sits free for minutes, and anything may take it meanwhile)."""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    global PORT
    PORT = free_port()
    async for e in open_trainer_env(
        request, tmp_path_factory, webhook_server_port=PORT, operator_namespace=OPERATOR_NS
    ):
        yield e


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The SDK's module state reset (it throttles to one post per 5 s and caches the token)."""
    monkeypatch.setattr(sdk_utils, "_last_update_time", 0.0)
    monkeypatch.setattr(sdk_utils, "_cached_token", None)
    monkeypatch.setattr(sdk_utils, "_token_read_time", 0.0)
    yield monkeypatch


async def send_status(sdk_env: pytest.MonkeyPatch, **status: Any) -> bool:
    """The SDK's ``update_trainjob_status``, as a trainer calls it, tried up to three times.
    The SDK is best effort: a failed post is a warning and the trainer's next update goes out
    (once in five CI runs a TLS handshake to the operator ended early, cause not found); three
    failures in a row are the operator's fault. Each try clears the SDK's 5 s throttle."""
    for attempt in range(3):
        sdk_env.setattr(sdk_utils, "_last_update_time", 0.0)
        if await asyncio.to_thread(sdk_utils.update_trainjob_status, **status):
            return True
        if attempt < 2:
            await asyncio.sleep(1.0)
    return False


async def mint(env: Env, ns: str, account: str, audience: str) -> str:
    review = await env.client.request_json(
        "POST",
        SERVICEACCOUNTS.item_path(ns, account, "token"),
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [audience], "expirationSeconds": 3600},
        },
    )
    token: str = review["status"]["token"]
    return token


async def test_a_trainer_reports_progress_and_kubectl_shows_it(
    env: Env, sdk_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ns = await env.namespace("tjstatus")
    await env.client.create(
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "trainer", "namespace": ns},
        },
    )
    job = trainjob("mnist", ns, trainer={"numNodes": 1, "command": ["torchrun", "train.py"]})
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr

    # what the trainer's containers get (the plugin), and the CA ConfigMap beside the JobSet
    jobset = await poll(lambda: get(env, JOBSETS, ns, "mnist"), timeout=30, what="the JobSet")
    (node,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == "node"]
    pod_spec = node["template"]["spec"]["template"]["spec"]
    variables = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert variables["KUBEFLOW_TRAINER_SERVER_URL"] == (
        f"https://kubetrain-webhook-service.{OPERATOR_NS}.svc:443" + status_path(ns, "mnist")
    )
    assert variables["KUBEFLOW_TRAINER_SERVER_TOKEN"] == "/var/run/secrets/kubeflow/trainer/token"
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "kubeflow-trainer-token"]
    projected = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert projected["audience"] == token_audience(ns, "mnist")
    config_map = await poll(
        lambda: get(env, CONFIGMAPS, ns, "mnist-tls-config"), timeout=15, what="the CA ConfigMap"
    )
    secret = await env.client.get(SECRETS, OPERATOR_NS, "kubetrain-webhook-cert")
    ca = base64.b64decode(secret["data"]["ca-bundle.crt"]).decode()
    assert config_map["data"]["ca.crt"] == ca

    # the trainer: the kubelet would mount these two files; the URL is the operator's here
    token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    token_file.write_text(await mint(env, ns, "trainer", token_audience(ns, "mnist")))
    ca_file.write_text(config_map["data"]["ca.crt"])
    url = f"https://localhost:{PORT}" + status_path(ns, "mnist")
    sdk_env.setenv("KUBEFLOW_TRAINER_SERVER_URL", url)
    sdk_env.setenv("KUBEFLOW_TRAINER_SERVER_CA_CERT", str(ca_file))
    sdk_env.setenv("KUBEFLOW_TRAINER_SERVER_TOKEN", str(token_file))
    sent = await send_status(
        sdk_env, progress_percent=42, estimated_remaining_seconds=120,
        metrics={"loss": 0.25, "accuracy": 0.9},
    )  # fmt: skip
    assert sent is True

    stored = await env.client.get(TRAINJOBS, ns, "mnist")
    trainer_status = stored["status"]["trainerStatus"]
    assert trainer_status["progressPercentage"] == 42
    assert trainer_status["estimatedRemainingSeconds"] == 120
    assert trainer_status["metrics"] == [
        {"name": "loss", "value": "0.25"},
        {"name": "accuracy", "value": "0.9"},
    ]
    assert trainer_status["lastUpdatedTime"].endswith("Z")
    managers = {m["manager"] for m in stored["metadata"].get("managedFields") or []}
    assert "trainer-status" in managers

    out = await run_kubectl(env, "get", "trainjob", "mnist", "-n", ns)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()[:2]
    columns = header.split()
    assert columns[:5] == ["NAME", "STATE", "PROGRESS", "%", "ETA"], header
    cells = row.split()
    assert cells[0] == "mnist" and "42" in cells and "120" in cells, row
    assert cells.index("42") < cells.index("120")

    # the controller's own status writes keep the trainer's (another field manager)
    await asyncio.sleep(0.5)
    again = await env.client.get(TRAINJOBS, ns, "mnist")
    assert again["status"]["trainerStatus"]["progressPercentage"] == 42


async def test_a_token_for_another_audience_or_namespace_is_403(env: Env, tmp_path: Path) -> None:
    ns = await env.namespace("tjdeny")
    await env.client.create(
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "trainer", "namespace": ns},
        },
    )
    job = trainjob("victim", ns, trainer={"numNodes": 1, "command": ["torchrun", "train.py"]})
    await env.client.create(TRAINJOBS, job)
    config_map = await poll(
        lambda: get(env, CONFIGMAPS, ns, "victim-tls-config"), timeout=30, what="the CA ConfigMap"
    )
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(config_map["data"]["ca.crt"])
    url = f"https://localhost:{PORT}" + status_path(ns, "victim")
    body = {"trainerStatus": {"progressPercentage": 99, "lastUpdatedTime": "2026-12-05T00:00:00Z"}}

    def post(token: str) -> requests.Response:
        return requests.post(
            url,
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            verify=str(ca_file),
            timeout=10,
        )

    other_job = await mint(env, ns, "trainer", token_audience(ns, "other"))
    other_ns = await env.namespace("tjother")
    await env.client.create(
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "trainer", "namespace": other_ns},
        },
    )
    # minted in another namespace for this TrainJob's audience: the namespace check refuses it
    foreign = await mint(env, other_ns, "trainer", token_audience(ns, "victim"))
    for token in (other_job, foreign, "not-a-token"):
        resp = await asyncio.to_thread(post, token)
        assert resp.status_code == 403, resp.text
        assert resp.json()["reason"] == "Forbidden"

    right = await mint(env, ns, "trainer", token_audience(ns, "victim"))
    resp = await asyncio.to_thread(post, right)
    assert resp.status_code == 200, resp.text
    stored: dict[str, Any] = await env.client.get(TRAINJOBS, ns, "victim")
    assert stored["status"]["trainerStatus"]["progressPercentage"] == 99

    missing = url.replace("/victim/", "/nobody/")
    gone = await mint(env, ns, "trainer", token_audience(ns, "nobody"))
    resp = await asyncio.to_thread(
        lambda: requests.post(
            missing,
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {gone}", "Content-Type": "application/json"},
            verify=str(ca_file),
            timeout=10,
        )
    )
    assert resp.status_code == 404, resp.text
