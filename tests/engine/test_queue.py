"""The base queue's contract: dedup, one worker per key, done, shutdown, priorities."""

from __future__ import annotations

import asyncio

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.engine.queue import (
    LOW_PRIORITY,
    NORMAL_PRIORITY,
    QueueEmpty,
    QueueOptions,
    QueueShutDown,
    WorkQueue,
)


def make_queue() -> WorkQueue[str]:
    return WorkQueue(QueueOptions(clock=FakeClock()))


def drain_now(queue: WorkQueue[str]) -> list[str]:
    """Every ready key, in hand-out order, each marked done."""
    keys = []
    while len(queue):
        key = queue.get_nowait()
        queue.done(key)
        keys.append(key)
    return keys


async def test_fifo_in_add_order() -> None:
    queue = make_queue()
    for key in ["ns/c", "ns/a", "ns/b"]:
        queue.add(key)
    assert [await queue.get() for _ in range(3)] == ["ns/c", "ns/a", "ns/b"]


async def test_adds_before_processing_collapse_into_one() -> None:
    queue = make_queue()
    for _ in range(5):
        queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/a")
    assert len(queue) == 2
    assert drain_now(queue) == ["ns/a", "ns/b"]
    assert len(queue) == 0


async def test_readd_while_processing_is_processed_again_once_after_done() -> None:
    queue = make_queue()
    queue.add("ns/a")
    key = await queue.get()
    for _ in range(3):
        queue.add("ns/a")
    # Not handed to a second worker while the first one holds it.
    assert len(queue) == 0
    with pytest.raises(QueueEmpty):
        queue.get_nowait()
    assert queue.queued_count() == 1
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "ns/a"
    queue.done("ns/a")
    assert len(queue) == 0
    assert queue.queued_count() == 0


async def test_waiting_worker_does_not_get_a_key_another_worker_holds() -> None:
    queue = make_queue()
    queue.add("ns/a")
    await queue.get()
    queue.add("ns/a")
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not second.done()
    queue.done("ns/a")
    assert await asyncio.wait_for(second, timeout=5) == "ns/a"


async def test_done_is_mandatory_and_checked() -> None:
    queue = make_queue()
    queue.add("ns/a")
    await queue.get()
    assert queue.is_processing("ns/a")
    queue.done("ns/a")
    assert not queue.is_processing("ns/a")
    with pytest.raises(ValueError, match="not processing"):
        queue.done("ns/a")
    with pytest.raises(ValueError, match="ns/never"):
        queue.done("ns/never")


async def test_get_waits_for_an_add() -> None:
    queue = make_queue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("ns/a")
    assert await asyncio.wait_for(getter, timeout=5) == "ns/a"


async def test_each_waiting_getter_gets_a_different_key() -> None:
    queue = make_queue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for key in ["ns/a", "ns/b", "ns/c"]:
        queue.add(key)
    got = await asyncio.wait_for(asyncio.gather(*getters), timeout=5)
    assert sorted(got) == ["ns/a", "ns/b", "ns/c"]


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    queue = make_queue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("ns/a")  # wakes `first`
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, timeout=5) == "ns/a"


async def test_shutdown_ignores_adds_and_drains_ready_items_then_raises() -> None:
    queue = make_queue()
    queue.add("ns/a")
    queue.add("ns/b")
    queue.shutdown()
    assert queue.shutting_down
    queue.add("ns/c")
    assert await queue.get() == "ns/a"
    assert await queue.get() == "ns/b"
    with pytest.raises(QueueShutDown):
        await queue.get()
    with pytest.raises(QueueShutDown):
        queue.get_nowait()


async def test_shutdown_wakes_waiting_getters_with_queue_shutdown() -> None:
    queue = make_queue()
    getters = [asyncio.create_task(queue.get()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.shutdown()
    for getter in getters:
        with pytest.raises(QueueShutDown):
            await asyncio.wait_for(getter, timeout=5)


async def test_shutdown_with_drain_waits_for_processing_items() -> None:
    queue = make_queue()
    queue.add("ns/a")
    queue.add("ns/b")
    await queue.get()
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await asyncio.sleep(0)
    assert not drain.done()
    queue.done("ns/a")
    await asyncio.sleep(0)
    assert not drain.done(), "ns/b is still ready: the drain waits for workers to take it"
    assert await queue.get() == "ns/b"
    await asyncio.sleep(0)
    assert not drain.done()
    queue.done("ns/b")
    await asyncio.wait_for(drain, timeout=5)


async def test_shutdown_with_drain_on_idle_queue_returns_at_once() -> None:
    queue = make_queue()
    await asyncio.wait_for(queue.shutdown_with_drain(), timeout=5)
    assert queue.shutting_down


async def test_readd_during_drain_is_processed_before_drain_ends() -> None:
    queue = make_queue()
    queue.add("ns/a")
    await queue.get()
    queue.add("ns/a")  # dirty while processing, added before shutdown
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await asyncio.sleep(0)
    queue.done("ns/a")
    assert await queue.get() == "ns/a"
    await asyncio.sleep(0)
    assert not drain.done()
    queue.done("ns/a")
    await asyncio.wait_for(drain, timeout=5)


async def test_higher_priority_first_fifo_within_priority() -> None:
    queue = make_queue()
    queue.add("low-1", priority=LOW_PRIORITY)
    queue.add("normal-1")
    queue.add("high-1", priority=10)
    queue.add("low-2", priority=LOW_PRIORITY)
    queue.add("normal-2", priority=NORMAL_PRIORITY)
    queue.add("high-2", priority=10)
    assert drain_now(queue) == ["high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"]


async def test_readd_keeps_the_higher_priority() -> None:
    queue = make_queue()
    queue.add("a", priority=LOW_PRIORITY)
    queue.add("b", priority=LOW_PRIORITY)
    queue.add("c")
    queue.add("b")  # raised to normal
    queue.add("c", priority=LOW_PRIORITY)  # lower: ignored
    assert drain_now(queue) == ["c", "b", "a"]


async def test_raised_priority_goes_to_the_tail_of_its_new_class() -> None:
    queue = make_queue()
    queue.add("x", priority=5)
    queue.add("y")
    queue.add("z", priority=5)
    queue.add("y", priority=5)
    assert drain_now(queue) == ["x", "z", "y"]
    assert len(queue) == 0


async def test_readd_while_processing_keeps_the_higher_priority_after_done() -> None:
    queue = make_queue()
    queue.add("a")
    await queue.get()
    queue.add("a", priority=LOW_PRIORITY)
    queue.add("a", priority=7)
    queue.add("b", priority=3)
    queue.done("a")
    assert drain_now(queue) == ["a", "b"]


async def test_new_job_is_not_stuck_behind_a_low_priority_backlog() -> None:
    queue = make_queue()
    for index in range(1000):
        queue.add(f"ns/finished-{index}", priority=LOW_PRIORITY)
    queue.add("ns/new")
    assert await queue.get() == "ns/new"


def test_priority_constants() -> None:
    assert LOW_PRIORITY == -100
    assert NORMAL_PRIORITY == 0
    assert LOW_PRIORITY < NORMAL_PRIORITY
