"""``dashboard/live.py``: coalesced ``jobs`` and ``job`` events, keepalives, the slow-client
bound; time is a ``FakeClock``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.dashboard.live import KEEPALIVE, LiveHub, Subscription


def parse(data: bytes) -> tuple[str, Any]:
    lines = data.decode().strip().split("\n")
    event = lines[0].removeprefix("event: ")
    return event, orjson.loads(lines[1].removeprefix("data: "))


def drain(sub: Subscription) -> list[tuple[str, Any]]:
    out = []
    while len(sub):
        out.append(parse(sub._items.popleft()))
    return out


async def turn() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def row(name: str, state: str = "Running") -> dict[str, Any]:
    return {"kind": "PyTorchJob", "namespace": "ns", "name": name, "state": state}


class Details:
    def __init__(self) -> None:
        self.built = 0

    def __call__(self, key: str) -> dict[str, Any] | None:
        self.built += 1
        return {"key": key, "n": self.built}


@pytest.fixture
async def hub() -> AsyncIterator[tuple[LiveHub, FakeClock, Details]]:
    clock = FakeClock()
    details = Details()
    version = iter(range(1, 1_000_000))
    h = LiveHub(
        version=lambda: next(version),
        detail=details,
        clock=clock,
        coalesce=0.2,
        keepalive=15,
        limit=5,
    )
    h.start()
    yield h, clock, details
    await h.stop()


async def test_a_burst_of_changes_is_one_jobs_event(
    hub: tuple[LiveHub, FakeClock, Details],
) -> None:
    h, clock, _ = hub
    sub = h.subscribe()
    assert drain(sub)[0][0] == "hello"
    h.row_changed("PyTorchJob/ns/a", row("a"))
    await turn()  # the first change of a quiet hub goes out at once
    ((event, data),) = drain(sub)
    assert event == "jobs" and data["changed"] == [row("a")] and data["deleted"] == []
    for i in range(100):
        h.row_changed("PyTorchJob/ns/a", row("a", f"S{i}"))
        h.row_changed(f"PyTorchJob/ns/b{i}", row(f"b{i}"))
    h.row_changed("PyTorchJob/ns/b7", None)
    await turn()
    assert drain(sub) == []  # within 200 ms of the last event: held
    clock.advance(0.1)
    await turn()
    assert drain(sub) == []
    clock.advance(0.1)
    await turn()
    ((event, data),) = drain(sub)
    assert event == "jobs"
    assert len(data["changed"]) == 100  # a (its last state) + b0..b99 without b7
    assert row("a", "S99") in data["changed"]
    assert data["deleted"] == [{"kind": "PyTorchJob", "namespace": "ns", "name": "b7"}]


async def test_nobody_listening_keeps_nothing(hub: tuple[LiveHub, FakeClock, Details]) -> None:
    h, _, _ = hub
    for i in range(1000):
        h.row_changed(f"PyTorchJob/ns/j{i}", row(f"j{i}"))
    assert h._changed == {} and not h._dirty.is_set()


async def test_a_followed_job_gets_its_detail_once_per_flush(
    hub: tuple[LiveHub, FakeClock, Details],
) -> None:
    h, clock, details = hub
    follower = h.subscribe(job="PyTorchJob/ns/a")
    other = h.subscribe(job="PyTorchJob/ns/a")
    assert [e for e, _ in drain(follower)] == ["hello", "job"]
    drain(other)
    built = details.built
    for _ in range(10):
        h.job_touched("PyTorchJob/ns/a")
        h.job_touched("PyTorchJob/ns/zzz")  # nobody follows it: nothing built
    await turn()
    clock.advance(0.2)
    await turn()
    assert details.built == built + 1  # one build for both followers
    assert [e for e, _ in drain(follower)] == ["job"]
    assert [e for e, _ in drain(other)] == ["job"]
    h.unsubscribe(other)
    assert h.subscribers == 1


async def test_keepalives_and_metrics(hub: tuple[LiveHub, FakeClock, Details]) -> None:
    h, clock, _ = hub
    sub = h.subscribe()
    drain(sub)
    clock.advance(15)
    await turn()
    assert sub._items.popleft() == KEEPALIVE
    h.metrics({"t": 1.0, "values": {"queue_depth": 3}})
    assert drain(sub) == [("metrics", {"t": 1.0, "values": {"queue_depth": 3}})]


async def test_a_client_that_does_not_read_is_dropped(
    hub: tuple[LiveHub, FakeClock, Details],
) -> None:
    h, _, _ = hub
    slow = h.subscribe()
    closed: list[bool] = []
    slow.on_drop = lambda: closed.append(True)
    fast = h.subscribe()
    for i in range(8):
        h.metrics({"t": float(i), "values": {}})
        while len(fast):
            await fast.next()
    assert slow.dropped and h.dropped == 1 and closed == [True]
    assert len(slow) == 0  # its queue is freed at once
    assert await slow.next() is None  # its writer ends the response
    assert h.subscribers == 1 and not fast.dropped


async def test_next_waits_for_an_event() -> None:
    sub = Subscription(job=None, limit=2)
    waiter = asyncio.ensure_future(sub.next())
    await turn()
    assert not waiter.done()
    sub.offer(b"x")
    assert await waiter == b"x"
    sub.close()
    assert await sub.next() is None
