"""Extension points for later layers: admission plugins, store listeners, storage backends,
middlewares and extra routes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from apiserver_helpers import Raw

from kubetrain.cluster.apiserver import errors
from kubetrain.cluster.apiserver.hooks import AdmissionRequest
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.server import ApiServer
from kubetrain.cluster.apiserver.store import Change
from kubetrain.cluster.embedded import EmbeddedCluster

CM = "/api/v1/namespaces/default/configmaps"

pytestmark = pytest.mark.embedded_only(
    reason="the embedded server's own extension points (in-process admission plugins, store "
    "listeners, storage backends, middlewares, extra routes): a real kube-apiserver has none; "
    "its webhook admission runs on both in test_admission.py"
)


class AddLabel:
    mutating = True

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None:
        if request.operation != "CREATE" or request.obj is None:
            return None
        obj = dict(request.obj)
        obj["metadata"] = {**obj["metadata"], "labels": {"admitted": "yes"}}
        return obj


class DenyName:
    mutating = False

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None:
        self.seen.append((request.operation, request.name))
        if request.name == "forbidden":
            raise errors.ApiError(
                400, "BadRequest", 'admission webhook "deny" denied the request: no'
            )
        if request.obj is not None:
            assert request.obj["metadata"]["labels"] == {"admitted": "yes"}  # mutation came first
        return None


async def test_admission_plugins_mutate_then_validate(cluster: EmbeddedCluster, raw: Raw) -> None:
    deny = DenyName()
    cluster.api.admission.extend([deny, AddLabel()])
    status, body, _ = await raw.post(CM, {"metadata": {"name": "ok"}})
    assert status == 201 and body["metadata"]["labels"] == {"admitted": "yes"}
    status, body, _ = await raw.post(CM, {"metadata": {"name": "forbidden"}})
    assert status == 400 and "denied the request" in body["message"]
    assert (await raw.get(f"{CM}/forbidden"))[0] == 404
    await raw.delete(f"{CM}/ok")
    assert ("DELETE", "ok") in deny.seen


async def test_store_listener_sees_every_commit(cluster: EmbeddedCluster, raw: Raw) -> None:
    seen: list[tuple[str, str, str | None]] = []

    def listener(
        event_type: str, info: Any, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        seen.append((event_type, info.plural, old["metadata"]["resourceVersion"] if old else None))

    cluster.api.store.add_listener(listener)
    _, created, _ = await raw.post(CM, {"metadata": {"name": "l"}})
    await raw.patch(f"{CM}/l", {"data": {"a": "b"}})
    await raw.delete(f"{CM}/l")
    rv = created["metadata"]["resourceVersion"]
    assert seen[0] == ("ADDED", "configmaps", None)
    assert seen[1] == ("MODIFIED", "configmaps", rv)
    assert seen[2][0] == "DELETED"


class ListBackend:
    def __init__(self, rv: int, objects: list[tuple[tuple[str, str], bytes]]) -> None:
        self.rv = rv
        self.objects = objects
        self.batches: list[list[Change]] = []

    def load(self) -> tuple[int, Iterable[tuple[tuple[str, str], bytes]]]:
        return self.rv, self.objects

    def append(self, changes: Sequence[Change]) -> None:
        self.batches.append(list(changes))


async def test_backend_is_loaded_and_receives_batches() -> None:
    stored = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kept", "namespace": "default", "resourceVersion": "40", "uid": "u"},
    }
    backend = ListBackend(41, [(("", "configmaps"), orjson.dumps(stored))])
    options = ApiServerOptions(backend=backend)
    async with EmbeddedCluster(options=options) as cluster, aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        _, body, _ = await raw.get(f"{CM}/kept")
        assert body["metadata"]["uid"] == "u"
        _, created, _ = await raw.post(CM, {"metadata": {"name": "new"}})
        assert int(created["metadata"]["resourceVersion"]) > 41
        # watching from before the reload is too old
        events = await raw.watch_lines(CM, {"watch": "true", "resourceVersion": "10"}, 1)
        assert events[0]["object"]["code"] == 410
    changes = [c for batch in backend.batches for c in batch]
    assert [c.name for c in changes if c.key == ("", "configmaps")] == ["new"]
    # a change carries the committed bytes: the object as stored, at the change's rv
    for c in changes:
        meta = orjson.loads(c.data)["metadata"]
        assert (meta.get("namespace", ""), meta["name"]) == (c.namespace, c.name)
        assert c.rv == int(meta["resourceVersion"])


async def test_middlewares_and_extra_routes() -> None:
    calls: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        calls.append(request.path)
        return await handler(request)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="requests_total 1\n")

    server = ApiServer()
    server.middlewares.append(count)
    server.extra_routes.insert(0, web.get("/kubetrain-test/extra", metrics))
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/kubetrain-test/extra") as resp:
                assert await resp.text() == "requests_total 1\n"
            async with session.get(url + "/api/v1/namespaces") as resp:
                assert resp.status == 200
    finally:
        await server.stop()
    assert calls == ["/kubetrain-test/extra", "/api/v1/namespaces"]
