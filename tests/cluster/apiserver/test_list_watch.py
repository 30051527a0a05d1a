"""LIST (selectors, paging) and WATCH (history, 410, bookmarks, initial events, selectors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from apiserver_helpers import Raw
from kubernetes_asyncio import client, watch

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster

# Talks HTTP only: also runs against a real kube-apiserver (--apiserver=real).
pytestmark = pytest.mark.http_api

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def _names(body: dict) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


async def _seed(raw: Raw, count: int) -> None:
    for i in range(count):
        labels = {"app": "a" if i % 2 == 0 else "b", "idx": str(i)}
        status, _, _ = await raw.post(CM, {"metadata": {"name": f"cm-{i:02d}", "labels": labels}})
        assert status == 201


async def test_label_selectors_equality_and_set_based(raw: Raw) -> None:
    await _seed(raw, 6)
    _, body, _ = await raw.get(CM, params={"labelSelector": "app=a"})
    assert _names(body) == ["cm-00", "cm-02", "cm-04"]
    _, body, _ = await raw.get(CM, params={"labelSelector": "app in (b),idx notin (1,3)"})
    assert _names(body) == ["cm-05"]
    _, body, _ = await raw.get(CM, params={"labelSelector": "app!=a,!missing"})
    assert _names(body) == ["cm-01", "cm-03", "cm-05"]
    status, body, _ = await raw.get(CM, params={"labelSelector": "app in a"})
    assert status == 400


async def test_field_selectors_on_pods(raw: Raw) -> None:
    for name, node in (("p1", "n1"), ("p2", "n2"), ("p3", "")):
        spec: dict = {"containers": [{"name": "c", "image": "i"}]}
        if node:
            spec["nodeName"] = node
        await raw.post(PODS, {"metadata": {"name": name}, "spec": spec})
    _, body, _ = await raw.get(PODS, params={"fieldSelector": "spec.nodeName=n1"})
    assert _names(body) == ["p1"]
    _, body, _ = await raw.get(PODS, params={"fieldSelector": "spec.nodeName="})
    assert _names(body) == ["p3"]
    _, body, _ = await raw.get(
        "/api/v1/pods", params={"fieldSelector": "status.phase=Pending,metadata.name!=p2"}
    )
    assert _names(body) == ["p1", "p3"]


async def test_limit_and_continue_pages(raw: Raw) -> None:
    await _seed(raw, 7)
    seen: list[str] = []
    params = {"limit": "3"}
    pages = 0
    while True:
        _, body, _ = await raw.get(CM, params=params)
        pages += 1
        seen += _names(body)
        token = body["metadata"].get("continue")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == 7 - len(seen)
        params = {"limit": "3", "continue": token}
    assert pages == 3
    assert seen == [f"cm-{i:02d}" for i in range(7)]
    _, body, _ = await raw.get(CM, params={"limit": "2", "labelSelector": "app=b"})
    assert _names(body) == ["cm-01", "cm-03"]
    params = {"continue": body["metadata"]["continue"], "limit": "2", "labelSelector": "app=b"}
    _, body, _ = await raw.get(CM, params=params)
    assert _names(body) == ["cm-05"]


@pytest.fixture
async def small_history() -> AsyncIterator[tuple[EmbeddedCluster, Raw]]:
    options = ApiServerOptions(watch_history_size=3, bookmark_interval_seconds=0.2)
    async with EmbeddedCluster(options=options) as cluster, aiohttp.ClientSession() as session:
        yield cluster, Raw(cluster.url, session)


@pytest.mark.embedded_only(reason="own EmbeddedCluster with a small watch history")
async def test_old_continue_token_is_expired(small_history: tuple[EmbeddedCluster, Raw]) -> None:
    _, raw = small_history
    await _seed(raw, 3)
    _, body, _ = await raw.get(CM, params={"limit": "1"})
    token = body["metadata"]["continue"]
    await _seed_more(raw, 5)
    status, body, _ = await raw.get(CM, params={"limit": "1", "continue": token})
    assert (status, body["reason"]) == (410, "Expired")


async def _seed_more(raw: Raw, count: int) -> None:
    for i in range(count):
        await raw.post(CM, {"metadata": {"name": f"more-{i}"}})


async def test_watch_from_resource_version_replays_history(raw: Raw) -> None:
    _, first, _ = await raw.post(CM, {"metadata": {"name": "w1"}})
    rv = first["metadata"]["resourceVersion"]
    await raw.patch(f"{CM}/w1", {"data": {"a": "1"}})
    await raw.delete(f"{CM}/w1")
    events = await raw.watch_lines(CM, {"watch": "true", "resourceVersion": rv}, 2)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"a": "1"}
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_rv_zero_sends_synthetic_added_then_live(
    raw: Raw, cluster: EmbeddedCluster
) -> None:
    await _seed(raw, 2)

    async def later() -> None:
        await asyncio.sleep(0.1)
        await raw.post(CM, {"metadata": {"name": "live"}})

    task = asyncio.create_task(later())
    events = await raw.watch_lines(CM, {"watch": "1", "resourceVersion": "0"}, 3)
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "cm-00"),
        ("ADDED", "cm-01"),
        ("ADDED", "live"),
    ]


@pytest.mark.embedded_only(reason="own EmbeddedCluster with a small watch history")
async def test_compacted_rv_gives_410_then_relist_works(
    small_history: tuple[EmbeddedCluster, Raw],
) -> None:
    _, raw = small_history
    _, first, _ = await raw.post(CM, {"metadata": {"name": "old"}})
    await _seed_more(raw, 5)
    events = await raw.watch_lines(
        CM, {"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}, 5
    )
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"
    _, listed, _ = await raw.get(CM)
    rv = listed["metadata"]["resourceVersion"]
    task = asyncio.create_task(raw.watch_lines(CM, {"watch": "true", "resourceVersion": rv}, 1))
    await asyncio.sleep(0.1)
    await raw.post(CM, {"metadata": {"name": "after"}})
    events = await task
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "after"


@pytest.mark.embedded_only(reason="own EmbeddedCluster with a small watch history")
async def test_bookmarks_when_idle(small_history: tuple[EmbeddedCluster, Raw]) -> None:
    _, raw = small_history
    _, listed, _ = await raw.get(CM)
    params = {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": listed["metadata"]["resourceVersion"],
    }
    events = await raw.watch_lines(CM, params, 2)
    assert [e["type"] for e in events] == ["BOOKMARK", "BOOKMARK"]
    bookmark = events[0]["object"]
    assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
    assert list(bookmark["metadata"]) == ["resourceVersion"]


async def test_send_initial_events_ends_with_annotated_bookmark(raw: Raw) -> None:
    await _seed(raw, 2)
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    events = await raw.watch_lines(CM, params, 3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    annotations = events[2]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_timeout_seconds_ends_the_stream(raw: Raw) -> None:
    _, listed, _ = await raw.get(CM)
    params = {
        "watch": "true",
        "resourceVersion": listed["metadata"]["resourceVersion"],
        "timeoutSeconds": "1",
    }
    events = await asyncio.wait_for(raw.watch_lines(CM, params, 10), 5)
    assert events == []


async def test_selector_watch_sees_objects_enter_and_leave(raw: Raw) -> None:
    _, obj, _ = await raw.post(CM, {"metadata": {"name": "sel", "labels": {"x": "no"}}})
    rv = obj["metadata"]["resourceVersion"]
    await raw.patch(f"{CM}/sel", {"metadata": {"labels": {"x": "yes"}}})
    await raw.patch(f"{CM}/sel", {"data": {"k": "v"}})
    await raw.patch(f"{CM}/sel", {"metadata": {"labels": {"x": "no"}}})
    await raw.post(CM, {"metadata": {"name": "other", "labels": {"x": "no"}}})
    events = await raw.watch_lines(
        CM,
        {"watch": "true", "resourceVersion": rv, "labelSelector": "x=yes", "timeoutSeconds": "1"},
        10,
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    events = await raw.watch_lines(
        CM,
        {
            "watch": "true",
            "resourceVersion": rv,
            "fieldSelector": "metadata.name=sel",
            "timeoutSeconds": "1",
        },
        10,
    )
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "MODIFIED"]


@pytest.mark.embedded_only(reason="reads the watch hub and writes to the store directly")
async def test_slow_watcher_is_closed_not_blocking_writers() -> None:
    options = ApiServerOptions(watch_buffer_size=5)
    async with EmbeddedCluster(options=options) as cluster, aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        _, listed, _ = await raw.get(CM)
        async with session.get(
            cluster.url + CM,
            params={"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"]},
        ) as resp:
            assert cluster.api.hub.watcher_count() == 1
            # the handler is not scheduled while we write synchronously: the buffer overflows
            info = cluster.api.registry.lookup("", "v1", "configmaps")
            assert info is not None
            for i in range(20):
                cluster.api.store.create(
                    info,
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"burst-{i}", "namespace": "default"},
                    },
                )
            assert cluster.api.hub.watcher_count() == 0
            body = await resp.read()
        lines = [orjson.loads(line) for line in body.splitlines() if line]
        assert len(lines) <= 5
        assert cluster.api.store.count(info.storage_key, "default") == 20


async def test_kubernetes_asyncio_watch(api_client: client.ApiClient, raw: Raw) -> None:
    core = client.CoreV1Api(api_client)
    listed = await core.list_namespaced_config_map("default")
    rv = listed.metadata.resource_version

    async def produce() -> None:
        await asyncio.sleep(0.1)
        await raw.post(CM, {"metadata": {"name": "kw"}})
        await raw.delete(f"{CM}/kw")

    task = asyncio.create_task(produce())
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    async with w.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
    ) as stream:
        async for event in stream:
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                w.stop()
    await task
    assert seen == [("ADDED", "kw"), ("DELETED", "kw")]


@pytest.mark.embedded_only(reason="own EmbeddedCluster with a small watch history")
async def test_bookmarks_let_a_quiet_watch_resume_after_history_moved_on(
    small_history: tuple[EmbeddedCluster, Raw],
) -> None:
    """Why bookmarks exist: a watch that sees no events of its own keeps a current resourceVersion.

    Writes elsewhere (another namespace) push the resource's history past the watch's start; a
    client resuming from the last RV it saw would get 410 and relist, one resuming from the
    bookmark's RV continues."""
    _, raw = small_history
    _, listed, _ = await raw.get(CM)
    start_rv = listed["metadata"]["resourceVersion"]
    assert (await raw.post("/api/v1/namespaces", {"metadata": {"name": "elsewhere"}}))[0] == 201
    other = "/api/v1/namespaces/elsewhere/configmaps"
    params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": start_rv}

    target: list[int] = []  # set once the writes are done

    async def current_bookmark() -> str:
        """The first bookmark at or past ``target``, read from ONE watch opened at start_rv."""
        async with raw.session.get(raw.base + CM, params=params) as resp:
            assert resp.status == 200
            async for line in resp.content:
                event = orjson.loads(line)
                assert event["type"] == "BOOKMARK", event  # nothing happens in this namespace
                rv = int(event["object"]["metadata"]["resourceVersion"])
                if target and rv >= target[0]:
                    return str(rv)
        raise AssertionError("the watch ended without a current bookmark")

    watching = asyncio.create_task(current_bookmark())
    await asyncio.sleep(0.05)
    for i in range(6):  # the history keeps 3 events: these push start_rv out of it
        _, body, _ = await raw.post(other, {"metadata": {"name": f"noise-{i}"}})
    target.append(int(body["metadata"]["resourceVersion"]))
    bookmark_rv = await asyncio.wait_for(watching, 5)

    stale = await raw.watch_lines(CM, {**params, "resourceVersion": start_rv}, 1)
    assert stale[0]["type"] == "ERROR" and stale[0]["object"]["code"] == 410

    resumed = asyncio.create_task(
        raw.watch_lines(CM, {"watch": "true", "resourceVersion": bookmark_rv}, 1)
    )
    await asyncio.sleep(0.05)
    await raw.post(CM, {"metadata": {"name": "after-resume"}})
    events = await asyncio.wait_for(resumed, 5)
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "after-resume"
