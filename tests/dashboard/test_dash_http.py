"""The dashboard over real HTTP against the embedded cluster with the operator and its admission
webhooks: the list, the stream, the detail, logs, the actions and their guards, and what the
dashboard costs the API server (one list and one watch per informer, however many pages)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
import yaml
from conformance.apiserver_switch import selected_apiserver
from conformance.controlplane import host_address

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from jobkit_e2e import Env, job_manifest, open_env, poll

from kubetrain.bench.dashboard_cost import RecordingClient
from kubetrain.cluster.apiserver.faults import FaultRule
from kubetrain.dashboard import Dashboard, DashboardOptions
from kubetrain.dashboard.compact import COMPACTED, is_compacted
from kubetrain.engine.client import ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import kubeflow
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.api.webhooks import WebhookService
from kubetrain.up import free_port
from kubetrain.webhook_install import install_webhooks, wait_until_admitting

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

SERVICE = WebhookService(namespace="kubetrain-system")
ACT = {"X-Kubetrain-Dashboard": "1"}


class CountingClient(RecordingClient):
    """The bench's recording client, its requests as ``(verb, path)``."""

    @property
    def requests(self) -> list[tuple[str, str]]:
        return [(verb, path) for verb, _, path in (sent.partition(" ") for sent in self.sent)]


async def new_client(env: Env) -> CountingClient:
    config = await load_kubeconfig(env.cluster.kubeconfig_path)
    return CountingClient(
        config, ClientOptions(qps=0, registry=new_registry(process_metrics=False))
    )


class Running:
    def __init__(self, env: Env, dashboard: Dashboard, client: CountingClient, url: str) -> None:
        self.env = env
        self.dashboard = dashboard
        self.client = client
        self.url = url.rstrip("/")
        self.http = aiohttp.ClientSession()

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with self.http.get(self.url + path, params=params) as resp:
            body = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            return resp.status, orjson.loads(body) if "json" in ctype else body.decode()

    async def send(
        self, method: str, path: str, *, data: bytes | None = None, headers: Mapping[str, str] = ACT
    ) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, data=data, headers=headers) as resp:
            return resp.status, orjson.loads(await resp.read())


async def start_dashboard(env: Env, **options: Any) -> Running:
    client = await new_client(env)
    dashboard = Dashboard(client, DashboardOptions(bind="127.0.0.1:0", **options))
    url = await dashboard.start()
    return Running(env, dashboard, client, url)


async def stop_dashboard(running: Running) -> None:
    await running.http.close()
    await running.dashboard.stop()
    await running.client.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(nodes=4, apiserver=selected_apiserver(request.config)):
        port = free_port()
        await install_webhooks(
            e.client,
            port=port,
            service=SERVICE,
            endpoint_address=host_address() if e.real else None,
        )
        await e.start_operator(webhook_server_port=port, operator_namespace=SERVICE.namespace)
        await wait_until_admitting(e.client)
        yield e


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def dash(env: Env) -> AsyncIterator[Running]:
    running = await start_dashboard(env)
    yield running
    await stop_dashboard(running)


def pytorchjob(ns: str, name: str, *, run_seconds: float = 600, workers: int = 1) -> dict[str, Any]:
    kind = BY_KIND["PyTorchJob"]
    return job_manifest(
        kind.kind,
        kind.replica_field,
        kind.default_container,
        {"Master": 1, "Worker": workers},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
    )


async def row_of(dash: Running, ns: str, name: str) -> dict[str, Any] | None:
    status, answer = await dash.get("/api/jobs", namespace=ns, q=name, limit="500")
    assert status == 200, answer
    return next((r for r in answer["items"] if r["name"] == name), None)


async def running_job(dash: Running, ns: str, name: str, workers: int = 1) -> dict[str, Any]:
    await dash.env.create_job(pytorchjob(ns, name, workers=workers))

    async def ready() -> dict[str, Any] | None:
        row = await row_of(dash, ns, name)
        return row if row and row["state"] == "Running" and row["ready"] == 1 + workers else None

    row: dict[str, Any] = await poll(ready, timeout=30, what=f"{ns}/{name} running, pods ready")
    return row


async def test_info_and_the_list_show_submitted_jobs(dash: Running) -> None:
    status, info = await dash.get("/api/info")
    assert status == 200
    assert info["readOnly"] is False and info["metrics"] is False
    assert "PyTorchJob" in info["kinds"]
    assert "TrainJob" not in info["kinds"]  # no Trainer CRDs in this cluster: skipped, not fatal
    ns = await dash.env.namespace("list")
    row = await running_job(dash, ns, "listed", workers=2)
    assert row["kind"] == "PyTorchJob" and row["replicas"] == 3 and row["ready"] == 3
    assert row["uid"] and row["created"] and row["finished"] is None
    status, answer = await dash.get("/api/jobs", namespace=ns, sort="name", order="asc")
    assert answer["total"] == 1 and answer["counts"] == {"Running": 1}
    status, bad = await dash.get("/api/jobs", sort="age")
    assert status == 400 and "sort" in bad["message"]
    status, bad = await dash.get("/api/jobs", limit="x")
    assert status == 400 and "limit" in bad["message"]
    status, page = await dash.get("/")
    assert status == 200 and "<" in page


async def test_detail_has_pods_conditions_events_timings(dash: Running) -> None:
    ns = await dash.env.namespace("detail")
    await running_job(dash, ns, "shown")
    status, detail = await dash.get(f"/api/jobs/PyTorchJob/{ns}/shown")
    assert status == 200, detail
    assert detail["row"]["name"] == "shown"
    types = {t["type"]: t for t in detail["replicaTypes"]}
    assert set(types) == {"Master", "Worker"}
    assert [p["name"] for p in types["Worker"]["pods"]] == ["shown-worker-0"]
    pod = types["Master"]["pods"][0]
    assert pod["phase"] == "Running" and pod["ready"] is True and pod["node"]
    assert pod["containers"] == ["pytorch"]
    assert "Running" in [c["type"] for c in detail["conditions"]]
    assert detail["timings"]["startLatency"] is not None and detail["timings"]["restarts"] == 0
    assert yaml.safe_load(detail["yaml"])["metadata"]["name"] == "shown"
    assert "managedFields" not in detail["object"]["metadata"]
    reasons = {e["reason"] for e in detail["events"]}
    assert "SuccessfulCreatePod" in reasons, reasons
    status, missing = await dash.get(f"/api/jobs/PyTorchJob/{ns}/nope")
    assert status == 404 and "not found" in missing["message"]
    status, missing = await dash.get(f"/api/jobs/NoSuchJob/{ns}/nope")
    assert status == 404 and "NoSuchJob" in missing["message"]


async def test_a_finished_job_is_cached_compacted_and_shown_whole(dash: Running) -> None:
    """The store keeps a finished job without its pod templates (dashboard/compact.py); its row
    is unchanged and its detail is the whole object, fetched once per resourceVersion."""
    ns = await dash.env.namespace("finished")
    await dash.env.create_job(pytorchjob(ns, "done", run_seconds=0.2, workers=2))

    async def succeeded() -> dict[str, Any] | None:
        row = await row_of(dash, ns, "done")
        return row if row and row["state"] == "Succeeded" else None

    row = await poll(succeeded, timeout=30, what=f"{ns}/done Succeeded")
    assert row["replicas"] == 3 and row["finished"] is not None
    key = f"PyTorchJob/{ns}/done"
    cached = dash.dashboard.details.cached(key) if dash.dashboard.details else None
    assert cached is not None and is_compacted(cached)
    assert "template" not in cached["spec"]["pytorchReplicaSpecs"]["Worker"]
    gets_before = sum(1 for verb, path in dash.client.requests if verb == "GET")
    for _ in range(2):
        status, detail = await dash.get(f"/api/jobs/{key}")
        assert status == 200, detail
        worker = detail["object"]["spec"]["pytorchReplicaSpecs"]["Worker"]
        assert worker["replicas"] == 2 and worker["template"]["spec"]["containers"]
        assert COMPACTED not in detail["object"] and COMPACTED not in detail["yaml"]
        assert {t["type"] for t in detail["replicaTypes"]} == {"Master", "Worker"}
    gets = sum(1 for verb, path in dash.client.requests if verb == "GET") - gets_before
    assert gets == 1, dash.client.requests[-3:]


async def test_logs_of_a_pod_of_the_job_only(dash: Running) -> None:
    if dash.env.real:
        pytest.skip("the simulated nodes' logs are the embedded API server's")
    ns = await dash.env.namespace("logs")
    await running_job(dash, ns, "talks")
    await running_job(dash, ns, "other")
    path = f"/api/jobs/PyTorchJob/{ns}/talks/logs"

    async def logged() -> str | None:
        status, text = await dash.get(path, pod="talks-master-0")
        assert status == 200, text
        return text or None

    text = await poll(logged, timeout=15, what="the pod's log")
    assert "talks-master-0 pytorch" in text
    status, answer = await dash.get(path, pod="other-master-0")
    assert status == 404 and "not a pod of" in answer["message"]
    status, answer = await dash.get(path)
    assert status == 400 and "pod" in answer["message"]
    status, answer = await dash.get(path, pod="talks-master-0", tailLines="x")
    assert status == 400 and "tailLines" in answer["message"]
    # follow: streamed; the first bytes arrive while the pod runs on
    params = {"pod": "talks-master-0", "follow": "true", "tailLines": "1"}
    async with dash.http.get(dash.url + path, params=params) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        first = await asyncio.wait_for(resp.content.readline(), 10)
        assert b"talks-master-0" in first


async def read_event(resp: aiohttp.ClientResponse) -> tuple[str, Any]:
    """The next event of an SSE stream (keepalive comments skipped)."""
    event, data = "", None
    while True:
        line = (await resp.content.readline()).decode().rstrip("\n")
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = orjson.loads(line[6:])
        elif line == "" and event:
            return event, data


async def test_the_stream_sends_a_jobs_event_when_a_job_is_suspended(dash: Running) -> None:
    ns = await dash.env.namespace("stream")
    await running_job(dash, ns, "pausing")
    key = f"PyTorchJob/{ns}/pausing"
    async with dash.http.get(dash.url + "/api/stream", params={"job": key}) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        event, hello = await read_event(resp)
        assert event == "hello" and hello["version"] > 0
        event, detail = await read_event(resp)
        assert event == "job" and detail["row"]["name"] == "pausing"
        status, answer = await dash.send("POST", f"/api/jobs/{key}/suspend")
        assert status == 200 and answer["row"]["name"] == "pausing"

        async def suspended_seen() -> bool:
            while True:
                event, data = await read_event(resp)
                if event == "jobs" and any(
                    r["name"] == "pausing" and r["state"] == "Suspended" for r in data["changed"]
                ):
                    return True

        assert await asyncio.wait_for(suspended_seen(), 20)
    job = await dash.env.get_job("PyTorchJob", ns, "pausing")
    assert job is not None and job["spec"]["runPolicy"]["suspend"] is True
    status, answer = await dash.send("POST", f"/api/jobs/{key}/resume")
    assert status == 200
    job = await dash.env.get_job("PyTorchJob", ns, "pausing")
    assert job is not None and job["spec"]["runPolicy"]["suspend"] is False


async def test_the_websocket_sends_the_same_events(dash: Running) -> None:
    """``/api/ws`` (the page's transport) carries the stream's events as ``{event, data}``."""
    ns = await dash.env.namespace("socket")
    await running_job(dash, ns, "sock")
    key = f"PyTorchJob/{ns}/sock"
    async with dash.http.ws_connect(dash.url + "/api/ws", params={"job": key}) as ws:
        hello = orjson.loads((await ws.receive(timeout=20)).data)
        assert hello["event"] == "hello" and hello["data"]["version"] > 0
        detail = orjson.loads((await ws.receive(timeout=20)).data)
        assert detail["event"] == "job" and detail["data"]["row"]["name"] == "sock"
        status, _ = await dash.send("POST", f"/api/jobs/{key}/suspend")
        assert status == 200

        async def suspended_seen() -> bool:
            while True:
                message = orjson.loads((await ws.receive()).data)
                changed = message["data"].get("changed") or []
                if message["event"] == "jobs" and any(
                    r["name"] == "sock" and r["state"] == "Suspended" for r in changed
                ):
                    return True

        assert await asyncio.wait_for(suspended_seen(), 20)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await dash.http.ws_connect(dash.url + "/api/ws", params={"job": "Nope/a/b"})
    assert refused.value.status == 404

    async def unsubscribed() -> bool:
        return dash.dashboard.hub.subscribers == 0

    await poll(unsubscribed, timeout=10, what="the closed socket's subscription dropped")


async def test_submit_and_delete(dash: Running) -> None:
    ns = await dash.env.namespace("submit")
    manifest = pytorchjob(ns, "posted")
    del manifest["metadata"]["namespace"]
    status, answer = await dash.send(
        "POST", "/api/jobs", data=yaml.safe_dump(manifest).encode(), headers=ACT
    )
    assert status == 201, answer
    assert answer == {"kind": "PyTorchJob", "namespace": "default", "name": "posted"}
    status, answer = await dash.send("POST", "/api/jobs", data=orjson.dumps(pytorchjob(ns, "j")))
    assert status == 201 and answer["namespace"] == ns
    await poll(lambda: row_of(dash, ns, "j"), timeout=10, what="the posted job's row")
    status, answer = await dash.send("DELETE", f"/api/jobs/PyTorchJob/{ns}/j")
    assert status == 200 and answer == {}

    async def gone() -> bool:
        return await row_of(dash, ns, "j") is None

    await poll(gone, timeout=10, what="the deleted job's row gone")
    status, answer = await dash.send("DELETE", f"/api/jobs/PyTorchJob/{ns}/j")
    assert status == 404 and answer["reason"] == "NotFound"
    await dash.send("DELETE", "/api/jobs/PyTorchJob/default/posted")


async def test_an_invalid_job_gets_the_webhooks_answer_with_field_paths(dash: Running) -> None:
    ns = await dash.env.namespace("invalid")
    manifest = pytorchjob(ns, "bad")
    specs = manifest["spec"]["pytorchReplicaSpecs"]
    specs["Master"]["template"]["spec"]["containers"][0]["name"] = "not-pytorch"
    status, answer = await dash.send("POST", "/api/jobs", data=yaml.safe_dump(manifest).encode())
    assert 400 <= status < 500, answer
    assert answer["message"] and answer["causes"], answer
    assert any("pytorchReplicaSpecs" in c["field"] for c in answer["causes"]), answer
    for body, words in [
        (b"", "empty"),
        (b"a: [", "neither JSON nor YAML"),
        (b"kind: Pod\napiVersion: v1\nmetadata: {name: x}\n", "no training job"),
        (b"---\na: 1\n---\nb: 2\n", "2 objects"),
        (b"[1, 2]", "not an object"),
    ]:
        status, answer = await dash.send("POST", "/api/jobs", data=body)
        assert status == 400 and words in answer["message"], (body, answer)


async def test_actions_need_the_header(dash: Running) -> None:
    for method, path in [
        ("POST", "/api/jobs"),
        ("POST", "/api/jobs/PyTorchJob/default/x/suspend"),
        ("DELETE", "/api/jobs/PyTorchJob/default/x"),
    ]:
        status, answer = await dash.send(method, path, data=b"{}", headers={})
        assert status == 403 and "X-Kubetrain-Dashboard" in answer["message"]
        status, _ = await dash.send(
            method, path, data=b"{}", headers={"X-Kubetrain-Dashboard": "0"}
        )
        assert status == 403


async def test_read_only_refuses_every_action(env: Env) -> None:
    ro = await start_dashboard(env, read_only=True)
    try:
        status, info = await ro.get("/api/info")
        assert info["readOnly"] is True
        ns = await env.namespace("ro")
        await env.create_job(pytorchjob(ns, "kept"))
        for method, path in [
            ("POST", "/api/jobs"),
            ("POST", f"/api/jobs/PyTorchJob/{ns}/kept/suspend"),
            ("POST", f"/api/jobs/PyTorchJob/{ns}/kept/resume"),
            ("DELETE", f"/api/jobs/PyTorchJob/{ns}/kept"),
        ]:
            status, answer = await ro.send(method, path, data=orjson.dumps(pytorchjob(ns, "x")))
            assert status == 403 and "read-only" in answer["message"]
        assert await env.get_job("PyTorchJob", ns, "kept") is not None
        assert await env.get_job("PyTorchJob", ns, "x") is None
    finally:
        await stop_dashboard(ro)


async def test_pages_cost_no_api_requests(env: Env) -> None:
    """Ten open streams and reads of every kind: the dashboard's requests are discovery, then one
    LIST and one WATCH per informer; nothing per page."""
    ns = await env.namespace("cost")
    running = await start_dashboard(env)
    try:
        await env.create_job(pytorchjob(ns, "watched"))
        key = f"PyTorchJob/{ns}/watched"
        await poll(lambda: row_of(running, ns, "watched"), timeout=10, what="the row")
        streams = [
            await running.http.get(
                running.url + "/api/stream", params={"job": key} if i % 2 else {}
            )
            for i in range(10)
        ]
        try:
            for i, resp in enumerate(streams):
                assert (await read_event(resp))[0] == "hello"
                if i % 2:
                    assert (await read_event(resp))[0] == "job"  # the followed job, at once
            for _ in range(5):
                assert (await running.get("/api/jobs", sort="name", q="watch"))[0] == 200
                assert (await running.get(f"/api/jobs/{key}"))[0] == 200
                assert (await running.get("/api/info"))[0] == 200
            # a change of the row reaches every stream
            await env.client.patch(
                kubeflow("PyTorchJob"), ns, "watched", {"spec": {"runPolicy": {"suspend": True}}}
            )
            for resp in streams:
                event, _ = await asyncio.wait_for(read_event(resp), 10)
                assert event in ("jobs", "job")
        finally:
            for resp in streams:
                resp.close()

        async def all_closed() -> bool:
            return running.dashboard.hub.subscribers == 0

        await poll(all_closed, timeout=10, what="every closed stream unsubscribed")
        informers = running.dashboard.sources.informers  # type: ignore[union-attr]
        made = running.client.requests
        lists = [path for verb, path in made if verb == "LIST"]
        watches = [path for verb, path in made if verb == "WATCH"]
        others = [(verb, path) for verb, path in made if verb not in ("LIST", "WATCH")]
        assert len(lists) == len(informers) == len(set(lists)), lists
        assert len(watches) == len(informers) == len(set(watches)), watches
        # discovery: one GET per group/version of the job kinds, before the informers
        assert {p for _, p in others} <= {
            "/apis/kubeflow.org/v1",
            "/apis/trainer.kubeflow.org/v1alpha1",
        }
        print(f"\ndashboard API requests for 10 streams + 15 reads: {len(made)} ({made})")
    finally:
        await stop_dashboard(running)


async def test_a_loopback_dashboard_refuses_other_host_names(dash: Running) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 must not read."""
    status, answer = await dash.send("GET", "/api/jobs", headers={"Host": "evil.example:8090"})
    assert status == 403 and "DNS rebinding" in answer["message"]
    for host in ("localhost:8090", "127.0.0.1", "[::1]:8090"):
        status, _ = await dash.send("GET", "/api/info", headers={"Host": host})
        assert status == 200, host


@pytest.mark.embedded_only(reason="the embedded server's fault injection plays RBAC's refusal")
async def test_resources_the_credentials_may_not_list_are_named_with_the_fix(env: Env) -> None:
    """A user who may not list pods or TFJobs in all namespaces gets a dashboard at once that
    says what it does not show and how to fix it, instead of one waiting on lists that keep
    failing. (The long sync timeout makes a dashboard that waits fail this test by its timeout.)"""
    faults = env.cluster.api.faults
    for resource in ("pods", "tfjobs"):
        faults.add(FaultRule(action="error", verb="list", resource=resource, code=403))
    try:
        refused = await start_dashboard(env, sync_timeout=3600)
    finally:
        faults.clear()
    try:
        status, info = await refused.get("/api/info")
        assert status == 200
        assert "TFJob" not in info["kinds"] and "PyTorchJob" in info["kinds"]
        warnings = info["warnings"]
        assert len(warnings) == 2, warnings
        pods = next(w for w in warnings if w.startswith("pods, ready counts and logs"))
        assert "may not list pods in all namespaces" in pods and "-n NAMESPACE" in pods
        assert "forbidden" in pods  # the API server's own words
        assert any(w.startswith("TFJobs are not shown") for w in warnings), warnings
        status, _ = await refused.get("/api/jobs", kind="PyTorchJob")
        assert status == 200  # the rest works
        status, _ = await refused.get("/api/jobs/TFJob/default/x")
        assert status == 404
    finally:
        await stop_dashboard(refused)
