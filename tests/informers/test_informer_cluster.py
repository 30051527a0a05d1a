"""Informers against the embedded API server over real HTTP (``ApiClient`` as the Transport).

Faults come from an aiohttp middleware in front of the server: refuse watches with 500 or 429, and
the watch hub's own hooks (close every watch; a tiny history window so writes compact it -> 410).
Timeouts and backoff are shortened so each scenario takes about a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from informer_fakes import RecordingHandler
from prometheus_client import CollectorRegistry

from kubetrain.base.backoff import BackoffOptions
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.informer import InformerOptions, SharedInformer
from kubetrain.informers.metrics import InformerMetrics
from kubetrain.informers.reflector import ReflectorOptions
from kubetrain.informers.resource import CONFIGMAPS

NS = "default"


@dataclass
class Faults:
    """What the middleware does to the next watch requests."""

    watch_status: list[int] = field(default_factory=list)  # answer these codes, one per request
    retry_after: str | None = None
    hold_watches: asyncio.Event | None = None  # when set to an unset event: watches wait for it
    lists: int = 0
    watches: int = 0

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def inject(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if request.method == "GET" and request.path.endswith("/configmaps"):
                if request.query.get("watch") in ("true", "1"):
                    self.watches += 1
                    if self.hold_watches is not None:
                        await self.hold_watches.wait()
                    if self.watch_status:
                        code = self.watch_status.pop(0)
                        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                        return web.json_response(
                            {
                                "kind": "Status",
                                "apiVersion": "v1",
                                "status": "Failure",
                                "code": code,
                                "reason": "TooManyRequests" if code == 429 else "InternalError",
                                "message": "injected",
                            },
                            status=code,
                            headers=headers,
                        )
                else:
                    self.lists += 1
            return await handler(request)

        return inject


@dataclass
class Env:
    cluster: EmbeddedCluster
    client: ApiClient
    faults: Faults
    registry: CollectorRegistry
    metrics: InformerMetrics

    def informer(self, **reflector: Any) -> SharedInformer:
        options = dict(
            min_watch_duration=0.0,
            inactivity_timeout=5.0,
            backoff=BackoffOptions(initial=0.02, cap=0.1),
        )
        options.update(reflector)
        return SharedInformer(
            self.client,
            CONFIGMAPS,
            namespace=NS,
            options=InformerOptions(reflector=ReflectorOptions(**options)),  # type: ignore[arg-type]
            metrics=self.metrics,
        )

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"resource": "configmaps", **labels})
        return value or 0.0

    async def put(self, name: str, value: str = "1") -> dict[str, Any]:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS},
            "data": {"v": value},
        }
        return await self.client.request_json("POST", CONFIGMAPS.collection_path(NS), body=obj)

    async def update(self, name: str, value: str) -> None:
        current = await self.client.request_json("GET", CONFIGMAPS.item_path(NS, name))
        current["data"] = {"v": value}
        await self.client.request_json("PUT", CONFIGMAPS.item_path(NS, name), body=current)

    async def remove(self, name: str) -> None:
        await self.client.request_json("DELETE", CONFIGMAPS.item_path(NS, name))


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    history = getattr(request, "param", 10_000)
    faults = Faults()
    cluster = EmbeddedCluster(
        options=ApiServerOptions(watch_history_size=history, bookmark_interval_seconds=0.2)
    )
    cluster.api.middlewares.append(faults.middleware())
    await cluster.start()
    registry = CollectorRegistry()
    client = ApiClient(
        await load_kubeconfig(cluster.kubeconfig_path),
        ClientOptions(qps=0, max_retries=0, registry=CollectorRegistry()),
    )
    try:
        yield Env(cluster, client, faults, registry, InformerMetrics(registry))
    finally:
        await client.close()
        await cluster.stop()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` (state in another component: no event to wait on) for ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_informer_syncs_and_follows_live_changes(env: Env) -> None:
    await env.put("a")
    await env.put("b")
    informer = env.informer()
    handler = informer.add_event_handler(RecordingHandler())
    assert isinstance(handler, RecordingHandler)
    informer.start()
    try:
        assert await informer.wait_for_sync(timeout=5)
        assert sorted(handler.events) == [("add", "default/a", True), ("add", "default/b", True)]
        await env.put("c")
        await env.update("a", "2")
        await env.remove("b")
        await until(lambda: len(handler.events) == 5)
        assert [e[:2] for e in handler.events[2:]] == [
            ("add", "default/c"),
            ("update", "default/a"),
            ("delete", "default/b"),
        ]
        assert informer.lister.get(NS, "a")["data"] == {"v": "2"}  # type: ignore[index]
        # The server's periodic bookmarks reach the store.
        await until(
            lambda: (
                int(informer.store.resource_version)
                >= int(informer.lister.get(NS, "a")["metadata"]["resourceVersion"])
            )
        )  # type: ignore[index]
    finally:
        await informer.stop()


async def test_dropped_watch_resumes_without_relist(env: Env) -> None:
    informer = env.informer()
    handler = informer.add_event_handler(RecordingHandler())
    assert isinstance(handler, RecordingHandler)
    informer.start()
    try:
        assert await informer.wait_for_sync(timeout=5)
        await until(lambda: env.faults.watches == 1)
        env.cluster.api.hub.close_all()
        await until(lambda: env.faults.watches == 2)
        await env.put("after-drop")
        await until(lambda: ("add", "default/after-drop", False) in handler.events)
        assert env.faults.lists == 1
        assert env.metric("kubetrain_informer_relists_total") == 1
    finally:
        await informer.stop()


@pytest.mark.parametrize("env", [3], indirect=True)
async def test_forced_410_relists_and_delivers_tombstones(env: Env) -> None:
    for name in ("keep", "doomed", "changed"):
        await env.put(name)
    informer = env.informer()
    handler = informer.add_event_handler(RecordingHandler())
    assert isinstance(handler, RecordingHandler)
    informer.start()
    try:
        assert await informer.wait_for_sync(timeout=5)
        # Disconnect the informer and hold its re-watch while the history window rolls over.
        await until(lambda: env.faults.watches == 1)
        env.faults.hold_watches = asyncio.Event()
        env.cluster.api.hub.close_all()
        await until(lambda: env.faults.watches == 2)
        await env.remove("doomed")
        for i in range(5):
            await env.update("changed", str(i))
        await env.put("born")
        env.faults.hold_watches.set()
        await until(lambda: ("tombstone", "default/doomed") in handler.events)
        assert env.metric("kubetrain_informer_watch_restarts_total", reason="expired") >= 1
        assert env.metric("kubetrain_informer_relists_total") == 2
        assert ("add", "default/born", False) in handler.events
        assert ("update", "default/changed") in [e[:2] for e in handler.events]
        assert sorted(informer.store.keys()) == ["default/born", "default/changed", "default/keep"]
    finally:
        await informer.stop()


async def test_500_and_429_bursts_rewatch_without_relist(env: Env) -> None:
    informer = env.informer()
    handler = informer.add_event_handler(RecordingHandler())
    assert isinstance(handler, RecordingHandler)
    informer.start()
    try:
        assert await informer.wait_for_sync(timeout=5)
        await until(lambda: env.faults.watches == 1)
        env.faults.watch_status = [500, 500, 500, 429]
        env.faults.retry_after = "1"
        env.cluster.api.hub.close_all()
        await until(lambda: env.faults.watches >= 6, timeout=10)
        await env.put("after-burst")
        await until(lambda: ("add", "default/after-burst", False) in handler.events)
        assert env.faults.lists == 1
        assert env.metric("kubetrain_informer_watch_restarts_total", reason="error") == 3
        assert env.metric("kubetrain_informer_watch_restarts_total", reason="throttled") == 1
    finally:
        await informer.stop()


async def test_watch_list_syncs_without_a_list_request(env: Env) -> None:
    await env.put("a")
    factory = SharedInformerFactory(
        env.client,
        namespace=NS,
        options=InformerOptions(reflector=ReflectorOptions(use_watch_list=True)),
    )
    informer = factory.informer_for(CONFIGMAPS)
    factory.start()
    try:
        assert await factory.wait_for_sync(timeout=5)
        assert informer.store.keys() == ["default/a"]
        await env.put("b")
        await until(lambda: "default/b" in informer.store)
        assert env.faults.lists == 0
    finally:
        await factory.stop()
