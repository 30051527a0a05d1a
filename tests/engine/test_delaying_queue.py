"""add_after: heap + one clock timer, the earlier ready time wins, one entry per key."""

from __future__ import annotations

import asyncio

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.engine.delaying_queue import DelayingQueue
from kubetrain.engine.queue import QueueEmpty, QueueOptions, QueueShutDown


def make_queue() -> tuple[DelayingQueue[str], FakeClock]:
    clock = FakeClock()
    return DelayingQueue(QueueOptions(clock=clock)), clock


def drain_now(queue: DelayingQueue[str]) -> list[str]:
    keys = []
    while len(queue):
        key = queue.get_nowait()
        queue.done(key)
        keys.append(key)
    return keys


def test_item_becomes_ready_exactly_at_its_time() -> None:
    queue, clock = make_queue()
    queue.add_after("ns/a", 2.0)
    assert len(queue) == 0
    assert queue.waiting_count() == 1
    clock.advance(1.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert len(queue) == 1
    assert queue.waiting_count() == 0
    assert drain_now(queue) == ["ns/a"]


def test_non_positive_delay_is_a_plain_add() -> None:
    queue, _ = make_queue()
    queue.add_after("ns/a", 0)
    queue.add_after("ns/b", -3)
    assert drain_now(queue) == ["ns/a", "ns/b"]


def test_readding_a_waiting_item_keeps_the_earlier_ready_time() -> None:
    queue, clock = make_queue()
    queue.add_after("ns/a", 10)
    queue.add_after("ns/a", 3)  # earlier: wins
    queue.add_after("ns/a", 20)  # later: ignored
    clock.advance(3)
    assert drain_now(queue) == ["ns/a"]
    clock.advance(100)
    assert len(queue) == 0, "the superseded 10 s and 20 s entries must not fire a second pass"


def test_plain_add_of_a_waiting_item_makes_it_ready_now_once() -> None:
    queue, clock = make_queue()
    queue.add_after("ns/a", 5)
    queue.add("ns/a")
    assert drain_now(queue) == ["ns/a"]
    clock.advance(10)
    assert len(queue) == 0


def test_delayed_add_of_a_ready_item_is_absorbed() -> None:
    queue, clock = make_queue()
    queue.add("ns/a")
    queue.add_after("ns/a", 1)
    assert drain_now(queue) == ["ns/a"]
    clock.advance(5)
    assert len(queue) == 0


def test_items_become_ready_in_ready_time_order() -> None:
    queue, clock = make_queue()
    queue.add_after("ns/late", 2)
    queue.add_after("ns/early", 1)
    queue.add_after("ns/same-as-late", 2)
    clock.advance(5)
    assert drain_now(queue) == ["ns/early", "ns/late", "ns/same-as-late"]


def test_waiting_item_keeps_the_higher_priority() -> None:
    queue, clock = make_queue()
    queue.add("ns/other", priority=5)
    queue.add_after("ns/a", 1, priority=0)
    queue.add_after("ns/a", 9, priority=10)  # later time ignored, higher priority kept
    clock.advance(1)
    assert drain_now(queue) == ["ns/a", "ns/other"]


def test_item_due_while_processing_waits_for_done() -> None:
    queue, clock = make_queue()
    queue.add("ns/a")
    key = queue.get_nowait()
    queue.add_after("ns/a", 1)
    clock.advance(1)
    with pytest.raises(QueueEmpty):
        queue.get_nowait()
    queue.done(key)
    assert drain_now(queue) == ["ns/a"]


def test_one_timer_for_any_number_of_waiting_items() -> None:
    queue, clock = make_queue()
    for index in range(500):
        queue.add_after(f"ns/{index}", 1 + index * 0.01)
    assert clock.pending_timers() == 1
    clock.advance(2)
    assert len(queue) == 101
    assert clock.pending_timers() == 1
    clock.advance(10)
    assert len(queue) == 500
    assert clock.pending_timers() == 0


def test_earlier_item_rearms_the_timer() -> None:
    queue, clock = make_queue()
    queue.add_after("ns/late", 10)
    queue.add_after("ns/early", 1)
    assert clock.next_deadline() == 1
    clock.advance(1)
    assert drain_now(queue) == ["ns/early"]
    assert clock.next_deadline() == 10


async def test_waiting_getter_is_woken_when_the_delay_passes() -> None:
    queue, clock = make_queue()
    getter = asyncio.create_task(queue.get())
    queue.add_after("ns/a", 3)
    await asyncio.sleep(0)
    assert not getter.done()
    clock.advance(3)
    assert await asyncio.wait_for(getter, timeout=5) == "ns/a"


async def test_shutdown_drops_waiting_items_and_their_timer() -> None:
    queue, clock = make_queue()
    queue.add("ns/ready")
    queue.add_after("ns/waiting", 1)
    queue.shutdown()
    queue.add_after("ns/after-shutdown", 1)
    assert clock.pending_timers() == 0
    clock.advance(5)
    assert await queue.get() == "ns/ready"
    with pytest.raises(QueueShutDown):
        await queue.get()
