"""Fault injection: errors, latency, watch drops, 410s, compaction, resets, partitions,
rate/count, HTTP admin."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from apiserver_helpers import Raw

from kubetrain.cluster.apiserver.faults import FaultRule, FaultRuleError
from kubetrain.cluster.embedded import EmbeddedCluster

CM = "/api/v1/namespaces/default/configmaps"
FAULTS = "/kubetrain/faults"


def cm(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


async def test_429_with_retry_after_only_for_matching_verb_and_resource(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    cluster.api.faults.add(
        FaultRule(action="error", verb="create", resource="configmaps", code=429,
                  retry_after_seconds=7)
    )  # fmt: skip
    status, body, headers = await raw.post(CM, cm("a"))
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body["reason"] == "TooManyRequests"
    assert body["details"]["retryAfterSeconds"] == 7
    # other verbs and resources pass
    assert (await raw.get(CM))[0] == 200
    assert (await raw.post("/api/v1/namespaces/default/secrets", cm("s")))[0] == 201
    cluster.api.faults.clear()
    assert (await raw.post(CM, cm("a")))[0] == 201


async def test_5xx_codes_namespace_and_subresource_matching(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    await raw.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    faults = cluster.api.faults
    faults.add(FaultRule(action="error", resource="configmaps", namespace="other", code=503))
    status, body, headers = await raw.get("/api/v1/namespaces/other/configmaps")
    assert status == 503 and body["reason"] == "ServiceUnavailable"
    assert headers["Retry-After"] == "1"
    assert (await raw.get(CM))[0] == 200  # another namespace
    faults.clear()
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert (await raw.post("/api/v1/namespaces/default/pods", pod))[0] == 201
    faults.add(FaultRule(action="error", resource="pods/status", code=500))
    status, body, _ = await raw.get("/api/v1/namespaces/default/pods/p/status")
    assert status == 500 and body["message"] == "Internal error occurred: injected fault"
    assert (await raw.get("/api/v1/namespaces/default/pods/p"))[0] == 200
    faults.clear()
    faults.add(FaultRule(action="error", resource="pods", code=500))  # plural: subresources too
    assert (await raw.get("/api/v1/namespaces/default/pods/p/status"))[0] == 500


async def test_count_limits_firings_and_discovery_is_never_faulted(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    fault = cluster.api.faults.add(FaultRule(action="error", code=500, count=2))
    assert (await raw.get("/api")).__getitem__(0) == 200
    assert (await raw.get("/metrics"))[0] == 200
    codes = [(await raw.get(CM))[0] for _ in range(4)]
    assert codes == [500, 500, 200, 200]
    assert fault.fired == 2 and not fault.active


async def test_rate_is_reproducible_with_a_seed(cluster: EmbeddedCluster, raw: Raw) -> None:
    async def run(seed: int) -> list[int]:
        faults = cluster.api.faults
        faults.clear()
        faults.seed(seed)
        faults.add(FaultRule(action="error", verb="list", code=500, rate=0.5))
        return [(await raw.get(CM))[0] for _ in range(40)]

    first = await run(11)
    assert first == await run(11)
    failures = first.count(500)
    assert 8 <= failures <= 32  # about half, never all or none
    assert await run(12) != first


async def test_latency_delays_the_request(cluster: EmbeddedCluster, raw: Raw) -> None:
    cluster.api.faults.add(FaultRule(action="latency", verb="get", latency_seconds=0.3))
    await raw.post(CM, cm("a"))
    start = time.monotonic()
    status, _, _ = await raw.get(CM + "/a")
    assert status == 200
    assert time.monotonic() - start >= 0.3


async def test_latency_then_error_both_apply(cluster: EmbeddedCluster, raw: Raw) -> None:
    faults = cluster.api.faults
    slow = faults.add(FaultRule(action="latency", latency_seconds=0.05))
    fail = faults.add(FaultRule(action="error", code=503, count=1))
    assert (await raw.get(CM))[0] == 503
    assert slow.fired == 1 and fail.fired == 1


async def test_connection_reset(cluster: EmbeddedCluster) -> None:
    fault = cluster.api.faults.add(FaultRule(action="reset", verb="create", count=1))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientOSError):
            await session.post(cluster.url + CM, json=cm("a"))
        async with session.post(cluster.url + CM, json=cm("a")) as resp:
            assert resp.status == 201
    assert fault.fired == 1


async def test_partition_drops_watches_and_refuses_every_request_for_its_duration(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    watch = asyncio.create_task(_watch_events(cluster, {}))
    await wait_for_watchers(cluster, 1, ("", "configmaps"))
    fault = cluster.api.faults.add(FaultRule(action="partition", duration_seconds=0.5))
    assert await asyncio.wait_for(watch, 5) == []  # the open stream ended at the start
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # a new connection each time: still refused (RST, no answer)
            with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
                await session.get(cluster.url + CM)
        with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
            await session.get(cluster.url + CM, params={"watch": "true"})
        async with session.get(cluster.url + "/metrics") as resp:  # not a resource request
            assert resp.status == 200
        listed = await raw.get(FAULTS)
        assert listed[1]["rules"][0]["active"] is True
        # each refused request fired it (aiohttp itself retries a GET once on a dropped connection)
        refused = fault.fired
        assert refused >= 3 and fault.active
        await asyncio.sleep(0.6)
        async with session.get(cluster.url + CM) as resp:  # over: served again
            assert resp.status == 200
    assert fault.fired == refused and not fault.active
    assert cluster.api.faults.faults[0].active is False


async def test_partition_of_one_user_agent_leaves_other_clients_alone(
    cluster: EmbeddedCluster,
) -> None:
    fault = cluster.api.faults.add(
        FaultRule(action="partition", duration_seconds=30, user_agent="operator/")
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
            await session.get(cluster.url + CM, headers={"User-Agent": "operator/1.0"})
        async with session.get(cluster.url + CM, headers={"User-Agent": "harness/1"}) as resp:
            assert resp.status == 200
    assert fault.fired >= 1  # only the operator's request (aiohttp may have retried it once)
    cluster.api.faults.clear()
    assert not fault.active


async def test_partition_over_http_admin(cluster: EmbeddedCluster, raw: Raw) -> None:
    rule = {"action": "partition", "resource": "configmaps", "duration_seconds": 5}
    status, body, _ = await raw.post(FAULTS, [rule])
    assert status == 201
    (listed,) = body["rules"]
    assert listed["duration_seconds"] == 5 and listed["user_agent"] is None and listed["active"]
    assert (await raw.get("/api/v1/namespaces/default/secrets"))[0] == 200  # other resource
    await raw.delete(FAULTS)


async def wait_for_watchers(
    cluster: EmbeddedCluster, count: int, key: tuple[str, str] | None = None
) -> None:
    """Wait (up to 5 s) until ``count`` watchers (of ``key``) are registered."""
    for _ in range(500):
        if cluster.api.hub.watcher_count(key) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} watchers never registered")


async def _watch_events(cluster: EmbeddedCluster, params: dict[str, str]) -> list[dict]:
    """Read a whole watch stream (until the server ends it)."""
    out: list[dict] = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            cluster.url + CM, params={"watch": "true", **params}, timeout=aiohttp.ClientTimeout(10)
        ) as resp,
    ):
        assert resp.status == 200
        async for line in resp.content:
            if line.strip():
                out.append(orjson.loads(line))
    return out


async def test_drop_watch_after_n_events_ends_streams_and_repeats(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    rule = cluster.api.faults.add(
        FaultRule(action="drop_watch", resource="configmaps", after_events=3, count=2)
    )
    rv = str(cluster.api.store.rv)
    watch = asyncio.create_task(_watch_events(cluster, {"resourceVersion": rv}))
    await wait_for_watchers(cluster, 1, ("", "configmaps"))
    for i in range(5):
        await raw.post(CM, cm(f"c{i}"))
    events = await asyncio.wait_for(watch, 5)
    assert [e["object"]["metadata"]["name"] for e in events] == ["c0", "c1", "c2"]
    assert rule.fired == 1
    # a re-watch from the last seen RV gets the rest, then ends after 3 more events
    last = events[-1]["object"]["metadata"]["resourceVersion"]
    watch = asyncio.create_task(_watch_events(cluster, {"resourceVersion": last}))
    await wait_for_watchers(cluster, 1, ("", "configmaps"))
    await raw.post(CM, cm("c5"))  # the 6th event since the rule: second firing
    events = await asyncio.wait_for(watch, 5)
    assert [e["object"]["metadata"]["name"] for e in events] == ["c3", "c4", "c5"]
    assert rule.fired == 2 and not rule.active


async def test_drop_watch_at_once_ends_open_streams_only_of_that_resource(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    watch = asyncio.create_task(_watch_events(cluster, {}))
    secrets = asyncio.create_task(
        raw.watch_lines("/api/v1/namespaces/default/secrets", {"watch": "true"}, 1)
    )
    await wait_for_watchers(cluster, 2)
    cluster.api.faults.add(FaultRule(action="drop_watch", resource="configmaps"))
    assert await asyncio.wait_for(watch, 5) == []
    assert cluster.api.hub.watcher_count(("", "secrets")) == 1
    await raw.post("/api/v1/namespaces/default/secrets", cm("s"))
    assert len(await asyncio.wait_for(secrets, 5)) == 1


async def test_force_410_on_watch_from_an_old_rv_and_on_continue(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    for i in range(3):
        await raw.post(CM, cm(f"c{i}"))
    fault = cluster.api.faults.add(FaultRule(action="force_410", count=2))
    # a watch without RV and a plain list do not trigger it
    assert (await raw.get(CM))[0] == 200
    events = await _watch_events(cluster, {"timeoutSeconds": "1"})
    assert [e["type"] for e in events] == ["ADDED"] * 3
    assert fault.fired == 0
    events = await _watch_events(cluster, {"resourceVersion": "2"})
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    _, page, _ = await raw.get(CM, params={"limit": "1"})
    status, body, _ = await raw.get(
        CM, params={"limit": "1", "continue": page["metadata"]["continue"]}
    )
    assert status == 410 and body["reason"] == "Expired"
    assert fault.fired == 2
    # spent: the same continue works again
    status, _, _ = await raw.get(
        CM, params={"limit": "1", "continue": page["metadata"]["continue"]}
    )
    assert status == 200


async def test_compact_makes_old_resource_versions_expire(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    _, first, _ = await raw.post(CM, cm("a"))
    await raw.post(CM, cm("b"))
    old_rv = first["metadata"]["resourceVersion"]
    events = await _watch_events(cluster, {"resourceVersion": old_rv, "timeoutSeconds": "1"})
    assert [e["type"] for e in events] == ["ADDED"]  # history still there
    cluster.api.faults.add(FaultRule(action="compact", resource="configmaps"))
    events = await _watch_events(cluster, {"resourceVersion": old_rv})
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    # a watch from the current RV still works
    now = str(cluster.api.store.rv)
    events = await _watch_events(cluster, {"resourceVersion": now, "timeoutSeconds": "1"})
    assert events == []


async def test_http_admin_adds_lists_replaces_and_clears(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    rules = [{"action": "error", "verb": "create", "resource": "configmaps", "code": 429,
              "retry_after_seconds": 2, "count": 1}]  # fmt: skip
    status, body, _ = await raw.post(FAULTS, {"seed": 5, "rules": rules})
    assert status == 201
    assert body["seed"] == 5 and body["rules"][0]["code"] == 429
    assert body["rules"][0]["fired"] == 0 and body["rules"][0]["active"] is True
    assert (await raw.post(CM, cm("a")))[0] == 429
    _, body, _ = await raw.get(FAULTS)
    assert body["rules"][0]["fired"] == 1 and body["rules"][0]["active"] is False
    status, body, _ = await raw.put(FAULTS, [{"action": "error", "code": 500}])
    assert status == 200 and len(body["rules"]) == 1
    assert (await raw.get(CM))[0] == 500
    assert (await raw.delete(FAULTS))[0] == 200
    assert (await raw.get(CM))[0] == 200
    assert cluster.api.faults.faults == []


async def test_http_admin_refuses_bad_rules_naming_the_field(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    good = {"action": "error", "code": 500}
    status, body, _ = await raw.post(FAULTS, [good, {"action": "error", "code": 404}])
    assert status == 400
    assert "fault rule [1]" in body["message"] and "code" in body["message"]
    assert cluster.api.faults.faults == []  # nothing of that request was added
    status, body, _ = await raw.post(FAULTS, [{"action": "error", "colour": "red"}])
    assert status == 400 and "colour" in body["message"]
    status, body, _ = await raw.post(FAULTS, [{"verb": "get"}])
    assert status == 400 and "action" in body["message"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"action": "error", "verb": "GET"}, "verb"),
        ({"action": "error", "rate": 1.5}, "rate"),
        ({"action": "error", "count": 0}, "count"),
        ({"action": "latency"}, "latency_seconds"),
        ({"action": "error", "code": 429, "retry_after_seconds": 0}, "retry_after_seconds"),
        ({"action": "drop_watch", "namespace": "x"}, "namespace"),
        ({"action": "drop_watch", "verb": "create"}, "verb"),
        ({"action": "force_410", "verb": "create"}, "verb"),
        ({"action": "compact", "resource": "pods/status"}, "resource"),
        ({"action": "partition"}, "duration_seconds"),
        ({"action": "partition", "duration_seconds": 1, "rate": 0.5}, "rate"),
        ({"action": "partition", "duration_seconds": 1, "count": 3}, "count"),
        ({"action": "partition", "duration_seconds": 1, "resource": "pods/log"}, "resource"),
        ({"action": "error", "duration_seconds": 1}, "duration_seconds"),
        ({"action": "partition", "duration_seconds": -1}, "duration_seconds"),
        ({"action": "error", "user_agent": ""}, "user_agent"),
        ({"action": "compact", "user_agent": "x"}, "user_agent"),
    ],
)
def test_invalid_rules_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(FaultRuleError, match=field):
        FaultRule(**kwargs)  # type: ignore[arg-type]


async def test_no_rules_means_no_store_listener(cluster: EmbeddedCluster) -> None:
    listeners = cluster.api.store._listeners
    before = len(listeners)
    fault = cluster.api.faults.add(FaultRule(action="drop_watch", after_events=5))
    assert len(listeners) == before + 1
    cluster.api.faults.clear()
    assert len(listeners) == before and not fault.active
