"""EventRecorder: Event shape, aggregation, per-object limiting, bounded queue, write fallbacks.

Written Events are read back from the embedded API server; time is a FakeClock (its monotonic and
wall time move together), so windows, timestamps and token refills are exact.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.events import EventRecorder, EventRecorderOptions
from kubetrain.informers.resource import EVENTS, NAMESPACES, PODS

#: The fake clock's wall time at the start of every test (2023-11-14T22:13:20.25Z).
WALL_START = datetime.fromtimestamp(1_700_000_000.25, UTC)


@pytest.fixture
async def api(cluster: EmbeddedCluster) -> AsyncIterator[ApiClient]:
    async with ApiClient(
        await load_kubeconfig(cluster.kubeconfig_path), ClientOptions(registry=CollectorRegistry())
    ) as client:
        await client.create(NAMESPACES, {"metadata": {"name": "ml"}})
        yield client


def make(client: Any, **options: Any) -> tuple[EventRecorder, FakeClock, CollectorRegistry]:
    clock, registry = FakeClock(wall_start=WALL_START), CollectorRegistry()
    recorder = EventRecorder(
        client,
        "pytorchjob-controller",
        "node-1",
        options=EventRecorderOptions(clock=clock, registry=registry, **options),
    )
    return recorder, clock, registry


def job(name: str = "train", uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "resourceVersion": "42"},
    }


async def events_in(api: ApiClient, namespace: str = "ml") -> list[dict[str, Any]]:
    return await api.list_all(EVENTS, namespace)


def dropped(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("kubetrain_events_dropped_total", {"reason": reason}) or 0.0


async def test_event_is_written_like_client_go(api: ApiClient) -> None:
    recorder, _, _ = make(api)
    recorder.event(job(), "Normal", "SuccessfulCreatePod", "Created pod: train-worker-0")
    await recorder.close()
    [ev] = await events_in(api)
    assert re.fullmatch(r"train\.[0-9a-f]+", ev["metadata"]["name"])
    assert int(ev["metadata"]["name"].split(".")[1], 16) == int(WALL_START.timestamp() * 1e9)
    assert ev["involvedObject"] == {
        "kind": "PyTorchJob",
        "namespace": "ml",
        "name": "train",
        "uid": "uid-1",
        "apiVersion": "kubeflow.org/v1",
        "resourceVersion": "42",
    }
    assert ev["type"] == "Normal" and ev["reason"] == "SuccessfulCreatePod"
    assert ev["message"] == "Created pod: train-worker-0"
    assert ev["source"] == {"component": "pytorchjob-controller", "host": "node-1"}
    assert ev["count"] == 1
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2023-11-14T22:13:20Z"
    assert ev["reportingComponent"] == "pytorchjob-controller"


async def test_identical_events_aggregate_into_count(api: ApiClient) -> None:
    recorder, clock, registry = make(api)
    recorder.event(job(), "Warning", "Failed", "boom")
    for _ in range(3):
        clock.advance(30)
        recorder.event(job(), "Warning", "Failed", "boom")
    recorder.event(job(), "Warning", "Failed", "other message")
    await recorder.close()
    by_message = {e["message"]: e for e in await events_in(api)}
    assert set(by_message) == {"boom", "other message"}
    boom = by_message["boom"]
    assert boom["count"] == 4
    assert boom["firstTimestamp"] == "2023-11-14T22:13:20Z"
    assert boom["lastTimestamp"] == "2023-11-14T22:14:50Z"
    assert by_message["other message"]["count"] == 1
    writes = registry.get_sample_value("kubetrain_events_writes_total", {"verb": "patch"})
    assert writes == 3


async def test_after_the_window_a_new_event_object_starts(api: ApiClient) -> None:
    recorder, clock, _ = make(api, aggregation_window=60)
    recorder.event(job(), "Normal", "Tick", "same")
    clock.advance(61)
    recorder.event(job(), "Normal", "Tick", "same")
    await recorder.close()
    events = await events_in(api)
    assert [e["count"] for e in events] == [1, 1]
    assert len({e["metadata"]["name"] for e in events}) == 2


async def test_per_object_rate_limit_drops_then_refills(api: ApiClient) -> None:
    recorder, clock, registry = make(api, burst=25, refill_seconds=300)
    for i in range(30):
        recorder.event(job(), "Normal", "Step", f"step {i}")
    recorder.event(job("other", "uid-2"), "Normal", "Step", "another object is not limited")
    await recorder.flush()
    assert len(await events_in(api)) == 26
    assert dropped(registry, "rate_limited") == 5

    clock.advance(299)
    recorder.event(job(), "Normal", "Step", "still limited")
    clock.advance(1)
    recorder.event(job(), "Normal", "Step", "one token back")
    await recorder.close()
    messages = {e["message"] for e in await events_in(api)}
    assert "one token back" in messages and "still limited" not in messages
    assert dropped(registry, "rate_limited") == 6


async def test_limited_repeats_still_count(api: ApiClient) -> None:
    recorder, clock, _ = make(api, burst=2, refill_seconds=300)
    for _ in range(5):  # 2 written (create + patch), 3 dropped but counted
        recorder.event(job(), "Warning", "BackOff", "restarting")
    clock.advance(300)
    recorder.event(job(), "Warning", "BackOff", "restarting")
    await recorder.close()
    [ev] = await events_in(api)
    assert ev["count"] == 6


async def test_patch_of_a_vanished_event_recreates_it(api: ApiClient) -> None:
    recorder, _, _ = make(api)
    recorder.event(job(), "Normal", "Again", "x")
    await recorder.flush()
    [ev] = await events_in(api)
    await api.delete(EVENTS, "ml", ev["metadata"]["name"])
    recorder.event(job(), "Normal", "Again", "x")
    await recorder.close()
    [again] = await events_in(api)
    assert again["metadata"]["name"] == ev["metadata"]["name"] and again["count"] == 2


class BlockingTransport:
    """A Transport whose writes wait until released; records what was written."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bodies: list[Any] = []

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        await self.release.wait()
        self.bodies.append(body)
        return {}

    def stream_lines(self, path: str, **_: Any) -> Any:
        raise NotImplementedError


async def test_full_queue_drops_without_blocking() -> None:
    transport = BlockingTransport()
    recorder, _, registry = make(transport, queue_size=3)
    for i in range(10):  # event() is synchronous: it cannot block the caller
        recorder.event(job(f"j{i}", f"u{i}"), "Normal", "Made", "x")
    await asyncio.sleep(0)  # the writer takes one item off the queue and blocks on it
    assert dropped(registry, "queue_full") >= 6
    transport.release.set()
    await recorder.close()
    written = len(transport.bodies)
    assert written + dropped(registry, "queue_full") == 10
    assert written >= 3


async def test_an_event_dropped_for_a_full_queue_is_not_remembered_nor_charged() -> None:
    """An event the full queue refuses was never written: its next occurrence, once there is
    room, is a new Event (a create with count 1, not a patch of one that does not exist), and
    the refused one took no token of the object's bucket (burst 1 here)."""
    transport = BlockingTransport()
    recorder, _, registry = make(transport, queue_size=1, burst=1)
    recorder.event(job("first", "u0"), "Normal", "Made", "x")  # taken by the writer, blocked
    await asyncio.sleep(0)
    recorder.event(job("second", "u1"), "Normal", "Made", "x")  # fills the queue
    recorder.event(job(), "Normal", "Made", "x")  # refused: the queue is full
    assert dropped(registry, "queue_full") == 1
    transport.release.set()
    await recorder.flush()
    recorder.event(job(), "Normal", "Made", "x")
    await recorder.close()
    assert dropped(registry, "rate_limited") == 0
    last = transport.bodies[-1]
    assert last["involvedObject"]["name"] == "train" and last["count"] == 1
    assert len(transport.bodies) == 3


async def test_a_warning_takes_the_place_of_a_waiting_normal_event() -> None:
    """Queue full of Normal events: a Warning drops the newest of them instead of itself. Once
    only Warnings wait, a further Warning is dropped. flush() does not wait for a dropped one."""
    transport = BlockingTransport()
    recorder, _, registry = make(transport, queue_size=2)
    recorder.event(job("j0", "u0"), "Normal", "Made", "x")  # taken by the writer, blocked
    await asyncio.sleep(0)
    recorder.event(job("j1", "u1"), "Normal", "Made", "x")
    recorder.event(job("j2", "u2"), "Normal", "Made", "x")  # the queue is full now
    recorder.event(job("j3", "u3"), "Warning", "FailedCreatePod", "quota")  # j2's goes
    recorder.event(job("j4", "u4"), "Warning", "FailedCreatePod", "quota")  # j1's goes
    recorder.event(job("j5", "u5"), "Warning", "FailedCreatePod", "quota")  # none left: dropped
    assert dropped(registry, "queue_full") == 3
    transport.release.set()
    await asyncio.wait_for(recorder.flush(), 5)
    await recorder.close()
    written = [(b["involvedObject"]["name"], b["type"]) for b in transport.bodies]
    assert written == [("j0", "Normal"), ("j3", "Warning"), ("j4", "Warning")]


async def test_a_warning_its_bucket_refuses_takes_no_place() -> None:
    """A Warning over its object's budget is dropped as rate-limited and evicts nothing."""
    transport = BlockingTransport()
    recorder, _, registry = make(transport, queue_size=2, burst=1)
    recorder.event(job("j0", "u0"), "Normal", "Made", "x")  # taken by the writer, blocked
    await asyncio.sleep(0)
    recorder.event(job("j1", "u1"), "Normal", "Made", "x")
    recorder.event(job("j2", "u2"), "Normal", "Made", "x")  # the queue is full now
    recorder.event(job("j1", "u1"), "Warning", "FailedCreatePod", "quota")  # j1's token is spent
    assert dropped(registry, "rate_limited") == 1 and dropped(registry, "queue_full") == 0
    transport.release.set()
    await recorder.close()
    assert [b["involvedObject"]["name"] for b in transport.bodies] == ["j0", "j1", "j2"]


class FailingTransport(BlockingTransport):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.release.set()

    async def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionResetError("server went away")
        return await super().request_json(method, path, **kw)


async def test_connection_errors_are_retried_then_given_up() -> None:
    transport = FailingTransport(failures=2)
    recorder, clock, registry = make(transport, max_tries=3, retry_interval=10)
    recorder.event(job(), "Normal", "Retry", "x")
    for _ in range(2):
        for _ in range(5):
            await asyncio.sleep(0)
        clock.advance(10)
    await recorder.flush()
    assert len(transport.bodies) == 1

    transport.failures = 10
    recorder.event(job(), "Normal", "Retry", "y")
    for _ in range(3):
        for _ in range(5):
            await asyncio.sleep(0)
        clock.advance(10)
    await recorder.close()
    assert dropped(registry, "write_failed") == 1


def test_bad_arguments_are_named() -> None:
    recorder, _, _ = make(BlockingTransport())
    with pytest.raises(ValueError, match="type"):
        recorder.event(job(), "Info", "R", "m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resource="):
        recorder.event({"metadata": {"name": "p", "namespace": "ml"}}, "Normal", "R", "m")
    with pytest.raises(ValueError, match="component"):
        EventRecorder(BlockingTransport(), "")


async def test_list_items_use_the_resource_for_kind(api: ApiClient) -> None:
    recorder, _, _ = make(api)
    item = {"metadata": {"name": "p0", "namespace": "ml", "uid": "u"}}  # as in a LIST answer
    recorder.event(item, "Normal", "Scheduled", "ok", resource=PODS)
    await recorder.close()
    [ev] = await events_in(api)
    assert ev["involvedObject"]["kind"] == "Pod" and ev["involvedObject"]["apiVersion"] == "v1"
