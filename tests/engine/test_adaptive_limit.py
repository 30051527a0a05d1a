"""AdaptiveLimit in fake time: ramps up while answers are fast, halves on 429, honours
Retry-After, cuts on slow answers once per round trip, serves waiters by priority then in order,
and (through the ApiClient) never exceeds an explicit QPS cap and queues each request at the
priority of its context."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.engine.adaptive_limit import AdaptiveLimit, AdaptiveLimitOptions, Ticket
from kubetrain.engine.client import ApiClient, ClientOptions, request_kind
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.request_priority import current_request_priority, request_priority

FAST = 0.002  # seconds: a quick answer


def limiter(**options: Any) -> tuple[AdaptiveLimit, FakeClock]:
    clock = FakeClock()
    return AdaptiveLimit(AdaptiveLimitOptions(**options), clock=clock), clock


async def take(limit: AdaptiveLimit, n: int) -> list[Ticket]:
    return [await limit.acquire() for _ in range(n)]


async def round_trip(limit: AdaptiveLimit, *, latency: float = FAST, status: int = 200) -> None:
    """Use the whole limit once: admit as many requests as it allows, answer them all."""
    tickets = await take(limit, limit.limit)
    for ticket in tickets:
        limit.observe(ticket, kind="POST pods", latency=latency, status=status)


async def test_slow_start_doubles_each_round_trip_up_to_the_maximum() -> None:
    limit, _ = limiter(initial=4, maximum=64)
    seen = [limit.limit]
    for _ in range(6):
        await round_trip(limit)
        seen.append(limit.limit)
    assert seen == [4, 8, 16, 32, 64, 64, 64]
    assert limit.in_flight == 0


async def test_an_idle_client_does_not_grow_its_limit() -> None:
    """One request at a time says nothing about what the server can take."""
    limit, _ = limiter(initial=8)
    for _ in range(100):
        (ticket,) = await take(limit, 1)
        limit.observe(ticket, kind="GET pods", latency=FAST, status=200)
    assert limit.limit == 8


async def test_a_429_halves_the_limit_once_per_round_trip() -> None:
    limit, _ = limiter(initial=32, maximum=64)
    tickets = await take(limit, 32)
    # Every answer of this round is a 429: the first one cuts, the rest were sent before it.
    outcomes = {limit.observe(t, kind="POST pods", latency=FAST, status=429) for t in tickets}
    assert outcomes == {"throttled"}
    assert limit.limit == 16
    assert limit.cuts == {"throttled": 1, "slow": 0}
    # A request sent after the cut may cut again.
    (ticket,) = await take(limit, 1)
    limit.observe(ticket, kind="POST pods", latency=FAST, status=429)
    assert limit.limit == 8


async def test_after_a_cut_the_limit_grows_by_one_per_round_trip() -> None:
    limit, _ = limiter(initial=16, maximum=64)
    (ticket,) = await take(limit, 1)
    limit.observe(ticket, kind="POST pods", latency=FAST, status=429)
    assert limit.limit == 8
    sizes = []
    for _ in range(4):
        await round_trip(limit)
        sizes.append(limit.limit)
    assert sizes == [9, 10, 11, 12]


async def test_retry_after_holds_every_admission_until_it_has_passed() -> None:
    limit, clock = limiter(initial=8)
    (ticket,) = await take(limit, 1)
    limit.observe(ticket, kind="POST pods", latency=FAST, status=429, retry_after=2.0)
    assert limit.paused_for == pytest.approx(2.0)
    waiter = asyncio.ensure_future(limit.acquire())
    watch = asyncio.ensure_future(limit.wait_out_pause())
    await asyncio.sleep(0)
    clock.advance(1.9)
    await asyncio.sleep(0)
    assert not waiter.done() and not watch.done()
    clock.advance(0.1)
    for _ in range(3):
        await asyncio.sleep(0)
    assert watch.done()
    ticket = await waiter
    assert ticket.waited == pytest.approx(2.0)


async def test_a_5xx_with_retry_after_throttles_and_one_without_is_neutral() -> None:
    limit, clock = limiter(initial=8)
    (ticket,) = await take(limit, 1)
    assert limit.observe(ticket, kind="GET pods", latency=FAST, status=500) == "neutral"
    (ticket,) = await take(limit, 1)
    assert (
        limit.observe(ticket, kind="GET pods", latency=FAST, status=503, retry_after=1.0)
        == "throttled"
    )
    assert limit.limit == 4
    clock.advance(1.0)  # the Retry-After
    (ticket,) = await take(limit, 1)
    assert limit.observe(ticket, kind="GET pods", latency=FAST, status=404) == "neutral"
    (ticket,) = await take(limit, 1)
    assert limit.observe(ticket, kind="GET pods", latency=FAST, status=None) == "neutral"
    (ticket,) = await take(limit, 1)
    assert (
        limit.observe(ticket, kind="GET pods", latency=30.0, status=None, timed_out=True) == "slow"
    )
    assert limit.limit == 4  # a timeout reads as slow, and slowness never cuts below the floor


async def test_slow_answers_cut_but_one_outlier_does_not() -> None:
    limit, _ = limiter(initial=16, maximum=64, warmup=10, latency_slack=0.001)
    for _ in range(2):
        await round_trip(limit, latency=FAST)  # learn the usual latency: 2 ms
    grown = limit.limit
    # One answer 100x slower (a GC pause on the server): averaged away.
    (ticket,) = await take(limit, 1)
    assert limit.observe(ticket, kind="POST pods", latency=0.2, status=200) == "ok"
    assert limit.limit == grown
    # The server queues us: every answer takes 5x its usual time.
    await round_trip(limit, latency=5 * FAST)
    assert limit.cuts["slow"] == 1
    assert limit.limit == int(grown * 0.8)


async def test_slowness_never_cuts_below_the_floor_but_a_429_does() -> None:
    limit, _ = limiter(
        initial=10, maximum=64, warmup=1, latency_slack=0.001, latency_floor=8, window=10_000
    )
    for _ in range(30):
        await round_trip(limit, latency=FAST)
    for _ in range(20):
        await round_trip(limit, latency=50 * FAST)
    assert limit.limit == 8
    (ticket,) = await take(limit, 1)
    limit.observe(ticket, kind="POST pods", latency=FAST, status=429)
    assert limit.limit == 4


async def test_on_a_server_with_fair_queuing_only_429s_cut() -> None:
    limit, _ = limiter(initial=16, maximum=64, warmup=1, latency_slack=0.001)
    limit.note_fair_queuing()
    await round_trip(limit, latency=FAST)
    for _ in range(5):
        await round_trip(limit, latency=100 * FAST)
    assert limit.cuts["slow"] == 0 and limit.limit == 64
    (ticket,) = await take(limit, 1)
    limit.observe(ticket, kind="POST pods", latency=FAST, status=429)
    assert limit.limit == 32


async def test_latency_is_judged_against_its_own_kind_of_request() -> None:
    """A LIST that always takes 50 ms is not 'slow' because pod creates take 2 ms."""
    limit, _ = limiter(initial=8, warmup=5, latency_slack=0.001)
    for _ in range(20):
        (a, b) = await take(limit, 2)
        assert limit.observe(a, kind="POST pods", latency=FAST, status=200) == "ok"
        assert limit.observe(b, kind="LIST pytorchjobs", latency=0.05, status=200) == "ok"
    assert limit.cuts["slow"] == 0


async def test_waiters_are_served_in_arrival_order_and_a_cancelled_one_passes_its_slot() -> None:
    limit, _ = limiter(initial=1, maximum=1)
    (held,) = await take(limit, 1)
    order: list[str] = []

    async def request(name: str) -> None:
        ticket = await limit.acquire()
        order.append(name)
        await asyncio.sleep(0)
        limit.release(ticket, "neutral")

    first = asyncio.ensure_future(request("first"))
    cancelled = asyncio.ensure_future(request("cancelled"))
    last = asyncio.ensure_future(request("last"))
    await asyncio.sleep(0)
    cancelled.cancel()
    limit.release(held, "neutral")
    await asyncio.gather(first, last)
    assert order == ["first", "last"]
    assert limit.in_flight == 0


async def test_a_freed_slot_goes_to_the_highest_priority_then_the_oldest() -> None:
    limit, _ = limiter(initial=1, maximum=1)
    (held,) = await take(limit, 1)
    order: list[str] = []

    async def request(name: str, priority: int) -> None:
        ticket = await limit.acquire(priority=priority)
        order.append(name)
        await asyncio.sleep(0)
        limit.release(ticket, "neutral")

    tasks = [
        asyncio.ensure_future(request(name, priority))
        for name, priority in [
            ("create-1", 0),
            ("status-1", 10),
            ("create-2", 0),
            ("delete", 20),
            ("cancelled-status", 10),
            ("status-2", 10),
        ]
    ]
    await asyncio.sleep(0)
    assert limit.waiting == 6
    tasks[4].cancel()
    await asyncio.sleep(0)
    assert limit.waiting == 5
    limit.release(held, "neutral")
    await asyncio.gather(*tasks[:4], tasks[5])
    assert order == ["delete", "status-1", "status-2", "create-1", "create-2"]
    assert (limit.in_flight, limit.waiting) == (0, 0)
    # With nobody waiting, the fast path admits again.
    assert limit.try_acquire() is not None


async def test_in_flight_never_exceeds_the_limit_under_random_answers() -> None:
    limit, clock = limiter(initial=4, maximum=32)
    rng = random.Random(7)
    peak_excess = 0
    held: list[Ticket] = []

    async def client() -> None:
        nonlocal peak_excess
        for _ in range(200):
            ticket = await limit.acquire()
            peak_excess = max(peak_excess, limit.in_flight - limit.limit)
            held.append(ticket)
            await asyncio.sleep(0)

    async def server() -> None:
        while len(held) or not all(t.done() for t in clients):
            if held:
                ticket = held.pop(rng.randrange(len(held)))
                status = 429 if rng.random() < 0.05 else 200
                limit.observe(ticket, kind="POST pods", latency=FAST, status=status)
            await asyncio.sleep(0)

    clients = [asyncio.ensure_future(client()) for _ in range(8)]
    await asyncio.wait_for(asyncio.gather(server(), *clients), timeout=10)
    assert peak_excess <= 0
    assert limit.in_flight == 0
    assert clock.pending_timers() == 0


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="minimum <= initial <= maximum"):
        AdaptiveLimitOptions(initial=100, maximum=64)
    with pytest.raises(ValueError, match="latency_floor"):
        AdaptiveLimitOptions(minimum=4, latency_floor=2)
    with pytest.raises(ValueError, match="backoff"):
        AdaptiveLimitOptions(backoff=1.5)
    with pytest.raises(ValueError, match="connection_limit"):
        ClientOptions(adaptive=AdaptiveLimitOptions(maximum=64), connection_limit=10)


@pytest.mark.parametrize(
    ("verb", "path", "kind"),
    [
        ("POST", "/api/v1/namespaces/ns/pods", "POST pods"),
        ("GET", "/api/v1/namespaces/ns/pods", "LIST pods"),
        ("GET", "/api/v1/pods", "LIST pods"),
        ("DELETE", "/api/v1/namespaces/ns/pods/p-1", "DELETE pods"),
        (
            "PUT",
            "/apis/kubeflow.org/v1/namespaces/ns/pytorchjobs/j/status",
            "PUT pytorchjobs/status",
        ),
        ("GET", "/api/v1/namespaces/ns", "GET namespaces"),
        ("GET", "/apis/coordination.k8s.io/v1/namespaces/k/leases/l", "GET leases"),
        ("GET", "/version", "GET"),
    ],
)
def test_request_kind(verb: str, path: str, kind: str) -> None:
    assert request_kind(verb, path) == kind


# -- through the ApiClient -------------------------------------------------------------------------


async def test_the_client_never_exceeds_an_explicit_qps_cap(fake_server: Any) -> None:
    """Fast answers make the adaptive limit grow, but the fixed cap still spaces the requests:
    in fake time, 5 qps with a burst of 5 admits at most 5 + 5 t requests by time t."""
    clock = FakeClock()
    sent_at: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        sent_at.append(clock.monotonic())
        return web.json_response({})

    url = await fake_server(handler)
    options = ClientOptions(qps=5, burst=5, registry=CollectorRegistry(), clock=clock)
    async with ApiClient(ClientConfig(server=url), options) as client:
        calls = [
            asyncio.ensure_future(client.request_json("POST", "/api/v1/namespaces/n/pods"))
            for _ in range(40)
        ]
        while not all(c.done() for c in calls):
            await asyncio.sleep(0.001)
            clock.advance(0.05)
        await asyncio.gather(*calls)
    assert len(sent_at) == 40
    for i, t in enumerate(sorted(sent_at)):
        assert i + 1 <= 5 + 5 * t + 1e-6, f"request {i + 1} sent at t={t}"


async def test_the_client_pauses_everyone_on_retry_after_and_exports_its_limit(
    fake_server: Any,
) -> None:
    clock = FakeClock()
    answers = iter([429] + [200] * 50)
    sent_at: list[float] = []
    first_sent = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        sent_at.append(clock.monotonic())
        first_sent.set()
        code = next(answers)
        headers = {"Retry-After": "3"} if code == 429 else {}
        return web.json_response({}, status=code, headers=headers)

    url = await fake_server(handler)
    registry = CollectorRegistry()
    options = ClientOptions(registry=registry, clock=clock)
    async with ApiClient(ClientConfig(server=url), options) as client:
        first = asyncio.ensure_future(client.request_json("GET", "/api/v1/namespaces/n/pods/a"))
        await first_sent.wait()
        await asyncio.sleep(0.05)  # the 429 is in: everyone waits 3 s
        others = [
            asyncio.ensure_future(client.request_json("GET", f"/api/v1/namespaces/n/pods/{i}"))
            for i in range(5)
        ]
        await asyncio.sleep(0.05)
        assert len(sent_at) == 1
        assert registry.get_sample_value(
            "kubetrain_client_retry_after_pause_seconds", {"host": url[7:], "client": "main"}
        ) == pytest.approx(3.0)
        while not all(c.done() for c in [first, *others]):
            clock.advance(0.5)
            await asyncio.sleep(0.01)
        await asyncio.gather(first, *others)
    assert all(t >= 3.0 for t in sent_at[1:])
    host = url[7:]
    assert (
        registry.get_sample_value(
            "kubetrain_client_limit_cuts_total",
            {"host": host, "client": "main", "reason": "throttled"},
        )
        == 1
    )
    # Halved from 8, then one more after a round trip of good answers.
    assert (
        registry.get_sample_value(
            "kubetrain_client_inflight_limit", {"host": host, "client": "main"}
        )
        == 5
    )
    assert (
        registry.get_sample_value(
            "kubetrain_client_inflight_requests", {"host": host, "client": "main"}
        )
        == 0
    )


async def test_the_client_queues_requests_at_the_priority_of_their_context(
    fake_server: Any,
) -> None:
    """``request_priority`` reaches the limiter through the client: with one slot, held by a
    slow answer, the status write queued last is sent before the creations queued first."""
    release, first_sent = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        sent.append(request.path.rsplit("/", 1)[-1])
        if len(sent) == 1:
            first_sent.set()
            await release.wait()
        return web.json_response({})

    url = await fake_server(handler)
    one_slot = AdaptiveLimitOptions(initial=1, minimum=1, maximum=1, latency_floor=1)
    options = ClientOptions(registry=CollectorRegistry(), adaptive=one_slot)
    async with ApiClient(ClientConfig(server=url), options) as client:

        async def get(name: str, priority: int = 0) -> None:
            with request_priority(priority):
                await client.request_json("GET", f"/api/v1/namespaces/n/pods/{name}")

        first = asyncio.ensure_future(get("first"))
        await first_sent.wait()
        queued = [asyncio.ensure_future(get(f"create-{i}")) for i in range(3)]
        await asyncio.sleep(0.01)
        queued.append(asyncio.ensure_future(get("status", priority=10)))
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, *queued)
    assert sent == ["first", "status", "create-0", "create-1", "create-2"]


def test_request_priority_is_restored_after_its_block() -> None:
    assert current_request_priority() == 0
    with request_priority(20):
        assert current_request_priority() == 20
        with pytest.raises(RuntimeError), request_priority(10):
            assert current_request_priority() == 10
            raise RuntimeError
        assert current_request_priority() == 20
    assert current_request_priority() == 0


async def test_try_acquire_admits_at_once_only_when_acquire_would_not_wait() -> None:
    limit, clock = limiter(initial=2, maximum=2)
    first, second = limit.try_acquire(), limit.try_acquire()
    assert first is not None and second is not None and limit.try_acquire() is None  # full
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    limit.release(first, "neutral")  # the slot goes to the waiter, not to a newcomer
    assert limit.try_acquire() is None
    third = await waiter
    limit.release(second, "neutral")
    limit.release(third, "neutral")
    limit.pause(1.0)
    assert limit.try_acquire() is None  # a Retry-After holds every admission
    clock.advance(1.0)
    assert limit.try_acquire() is not None
