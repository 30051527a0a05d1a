"""Reflector state machine against a scripted transport, in fake time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest
from informer_fakes import (
    FakeTransport,
    RecordingClock,
    RecordingSink,
    Stream,
    bookmark,
    gone,
    line,
    page,
    pod,
    settle,
    status_line,
)
from prometheus_client import CollectorRegistry

from kubetrain.informers.metrics import InformerMetrics
from kubetrain.informers.reflector import Reflector, ReflectorOptions
from kubetrain.informers.resource import PODS
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.informers.transport import ApiStatusError

Start = Callable[..., Reflector]


class Env:
    def __init__(self) -> None:
        self.clock = RecordingClock()
        self.transport = FakeTransport()
        self.sink = RecordingSink()
        self.registry = CollectorRegistry()
        self.metrics = InformerMetrics(self.registry)
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, **options: object) -> Reflector:
        namespace = options.pop("namespace", None)
        # The inactivity watchdog sleeps on the clock too; tests of it turn it on explicitly.
        options.setdefault("inactivity_timeout", None)
        reflector = Reflector(
            transport=self.transport,
            resource=PODS,
            sink=self.sink,
            namespace=namespace,  # type: ignore[arg-type]
            transform=strip_managed_fields,
            options=ReflectorOptions(**options),  # type: ignore[arg-type]
            clock=self.clock,
            rng=random.Random(7),
            metrics=self.metrics.for_resource("pods"),
        )
        self.tasks.append(asyncio.create_task(reflector.run()))
        return reflector

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"resource": "pods", **labels})
        return value or 0.0


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    yield e
    for task in e.tasks:
        task.cancel()
    await asyncio.gather(*e.tasks, return_exceptions=True)


async def test_first_list_is_paged_from_rv_0_then_watches_from_list_rv(env: Env) -> None:
    env.transport.lists.extend(
        [
            page([pod("a", "5", managed=True)], "10", cont="tok"),
            page([pod("b", "7")], "10"),
        ]
    )
    env.transport.watches.append(Stream([line("ADDED", pod("c", "11"))], end="hang"))
    env.start(namespace="ns1")
    await settle()

    first, second = env.transport.list_calls
    assert first == {"resourceVersion": "0", "limit": "500"}
    assert second == {"continue": "tok", "limit": "500"}  # no RV with a continue token
    assert env.transport.paths[0] == "/api/v1/namespaces/ns1/pods"
    assert env.sink.calls[0] == ("replace", ["default/a", "default/b"], "10")
    # List items get kind/apiVersion back and pass through the transform.
    a = env.sink.last_objs[0]
    assert a["kind"] == "Pod" and a["apiVersion"] == "v1"
    assert "managedFields" not in a["metadata"]
    (watch,) = env.transport.watch_calls
    assert watch["resourceVersion"] == "10"
    assert watch["watch"] == "true" and watch["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch["timeoutSeconds"]) <= 600
    assert env.sink.calls[1] == ("upsert", "default/c", "11")
    assert env.metric("kubetrain_informer_relists_total") == 1


async def test_watch_events_reach_the_sink_and_advance_the_rv(env: Env) -> None:
    env.transport.lists.append(page([pod("a", "5")], "10"))
    env.transport.watches.append(
        Stream(
            [
                line("ADDED", pod("b", "11")),
                line("MODIFIED", pod("a", "12")),
                line("DELETED", pod("b", "13")),
                bookmark("20"),
            ],
            end="hang",
        )
    )
    reflector = env.start()
    await settle()
    assert env.sink.calls[1:] == [
        ("upsert", "default/b", "11"),
        ("upsert", "default/a", "12"),
        ("delete", "default/b"),
        ("bookmark", "20"),
    ]
    assert reflector.last_sync_resource_version == "20"
    assert env.metric("kubetrain_informer_events_total", type="ADDED") == 1
    assert env.metric("kubetrain_informer_events_total", type="BOOKMARK") == 1


async def test_clean_watch_end_rewatches_at_once_from_last_rv(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(Stream([line("ADDED", pod("a", "11")), bookmark("15")]))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await settle()
    assert [c["resourceVersion"] for c in env.transport.watch_calls] == ["10", "15"]
    assert env.clock.sleeps == []  # no backoff
    assert len(env.transport.list_calls) == 1
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="timeout") == 1


async def test_dropped_stream_resumes_from_last_rv_without_relist(env: Env) -> None:
    env.transport.lists.append(page([pod("a", "5")], "10"))
    env.transport.watches.append(Stream([line("MODIFIED", pod("a", "11"))], end="drop"))
    env.transport.watches.append(Stream([line("MODIFIED", pod("a", "12"))], end="hang"))
    env.start()
    await settle()
    assert len(env.clock.sleeps) == 1 and 0.8 <= env.clock.sleeps[0] <= 1.6
    assert len(env.transport.watch_calls) == 1  # waiting out the backoff
    await env.clock.step()
    assert [c["resourceVersion"] for c in env.transport.watch_calls] == ["10", "11"]
    assert len(env.transport.list_calls) == 1
    assert env.sink.kinds() == ["replace", "upsert", "upsert"]
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="closed") == 1


@pytest.mark.parametrize("how", ["error-event", "http"])
async def test_410_relists_with_a_consistent_read(env: Env, how: str) -> None:
    env.transport.lists.append(page([pod("a", "5"), pod("b", "6")], "10"))
    if how == "error-event":
        env.transport.watches.append(Stream([status_line(410, "Expired", "too old")]))
    else:
        env.transport.watches.append(gone())
    env.transport.lists.append(page([pod("a", "30")], "40"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await settle()
    assert len(env.transport.list_calls) == 1
    await env.clock.step()  # the backoff before relisting
    second = env.transport.list_calls[1]
    assert second == {"resourceVersion": "", "limit": "500"}
    assert env.sink.calls[-1] == ("replace", ["default/a"], "40")
    assert env.transport.watch_calls[-1]["resourceVersion"] == "40"
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="expired") == 1
    assert env.metric("kubetrain_informer_relists_total") == 2


async def test_429_waits_retry_after_and_rewatches_without_relist(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(
        ApiStatusError(429, reason="TooManyRequests", message="slow down", retry_after=7.0)
    )
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await settle()
    assert env.clock.sleeps == [7.0]
    assert await env.clock.step() == 7.0
    assert [c["resourceVersion"] for c in env.transport.watch_calls] == ["10", "10"]
    assert len(env.transport.list_calls) == 1
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="throttled") == 1


async def test_429_retry_after_from_an_error_event_status_details(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    too_many = {
        "kind": "Status",
        "code": 429,
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 3},
    }
    env.transport.watches.append(Stream([line("ERROR", too_many)]))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await settle()
    assert env.clock.sleeps == [3.0]


async def test_500_burst_backs_off_exponentially_then_resets_after_two_healthy_minutes(
    env: Env,
) -> None:
    env.transport.lists.append(page([], "10"))
    for _ in range(7):
        env.transport.watches.append(ApiStatusError(500, reason="InternalError", message="boom"))
    env.transport.watches.append(Stream([line("ADDED", pod("a", "11"))], end="hang"))
    env.start(inactivity_timeout=None)
    for _ in range(7):
        await env.clock.step()
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0]
    assert len(env.clock.sleeps) == 7
    for delay, base in zip(env.clock.sleeps, bases, strict=True):
        assert base <= delay < 2 * base  # jitter after the cap: 30 .. 60 s there
    assert len(env.transport.list_calls) == 1  # 5xx on watch: re-watch, never relist
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="error") == 7


async def test_a_410_after_an_outage_relists_without_the_outages_grown_backoff(env: Env) -> None:
    """A partition grew the delays to 12.8 s and more; the server's first answer is a 410 (its
    history was compacted meanwhile): the relist follows after an initial delay, not a grown one."""
    env.transport.lists.append(page([pod("a", "5")], "10"))
    for _ in range(5):
        env.transport.watches.append(ConnectionResetError("partitioned"))
    env.transport.watches.append(gone())
    env.transport.lists.append(page([pod("a", "30")], "40"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    for _ in range(6):
        await env.clock.step()
    *outage, before_relist = env.clock.sleeps
    assert len(outage) == 5 and outage[-1] >= 12.8
    assert 0.8 <= before_relist < 1.6
    assert [c["resourceVersion"] for c in env.transport.list_calls] == ["0", ""]  # consistent
    assert env.sink.calls[-1] == ("replace", ["default/a"], "40")


async def test_backoff_resets_after_two_minutes_without_failures(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    # Fail, fail, then a long healthy watch (3 min), then fail again.
    env.transport.watches.append(ApiStatusError(500, reason="InternalError"))
    env.transport.watches.append(ApiStatusError(500, reason="InternalError"))
    healthy = asyncio.Event()
    env.transport.watches.append(Stream([line("ADDED", pod("a", "11"))], end="drop", gate=healthy))
    env.transport.watches.append(Stream([], end="hang"))
    env.start(inactivity_timeout=None)
    await env.clock.step()
    await env.clock.step()
    assert 1.6 <= env.clock.sleeps[1] <= 3.2
    env.clock.advance(180)
    healthy.set()
    await settle()
    assert 0.8 <= env.clock.sleeps[2] <= 1.6


async def test_silent_stream_reconnects_after_inactivity_timeout(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(Stream([bookmark("12")], end="hang"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start(inactivity_timeout=90.0)
    await settle()
    assert len(env.transport.watch_calls) == 1
    assert await env.clock.step() == 90.0
    assert [c["resourceVersion"] for c in env.transport.watch_calls] == ["10", "12"]
    assert env.transport.open_streams == 1  # the silent one was closed
    assert len(env.transport.list_calls) == 1
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="inactivity") == 1


async def test_inactivity_is_counted_from_the_last_line(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(Stream([bookmark("12")], end="hang"))
    env.start(inactivity_timeout=90.0)
    await settle()
    env.clock.advance(60)
    await settle()
    assert len(env.transport.watch_calls) == 1
    # The stream is silent from t=0: it is cut at t=90, not before.
    env.clock.advance(29)
    await settle()
    assert len(env.transport.watch_calls) == 1
    env.clock.advance(1)
    await settle()
    assert len(env.transport.watch_calls) == 2


async def test_watch_closed_at_once_without_events_backs_off(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(Stream([]))  # closes immediately, nothing sent
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await settle()
    assert len(env.clock.sleeps) == 1
    await env.clock.step()
    assert len(env.transport.watch_calls) == 2
    assert env.metric("kubetrain_informer_watch_restarts_total", reason="closed") == 1


async def test_forbidden_list_backs_off_and_retries(env: Env) -> None:
    env.transport.lists.append(ApiStatusError(403, reason="Forbidden", message="no rbac"))
    env.transport.lists.append(page([pod("a", "1")], "10"))
    env.transport.watches.append(Stream([], end="hang"))
    reflector = env.start()
    await settle()
    assert len(env.clock.sleeps) == 1
    refused = reflector.last_error
    assert isinstance(refused, ApiStatusError) and refused.code == 403  # readable while it waits
    await env.clock.step()
    assert [c["resourceVersion"] for c in env.transport.list_calls] == ["0", "0"]
    assert env.sink.kinds() == ["replace"]
    assert reflector.last_error is None  # the list that succeeded clears it


async def test_other_4xx_on_watch_relists_at_the_last_rv_unpaged(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(Stream([line("ADDED", pod("a", "11"))], end="drop"))
    env.transport.watches.append(ApiStatusError(400, reason="BadRequest"))
    env.transport.lists.append(page([pod("a", "11")], "12"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await env.clock.step()
    await env.clock.step()
    # client-go: a relist at a known RV is not paged so the watch cache can serve it.
    assert env.transport.list_calls[1] == {"resourceVersion": "11"}


async def test_relist_at_expired_rv_falls_back_to_consistent_read_at_once(env: Env) -> None:
    env.transport.lists.append(page([], "10"))
    env.transport.watches.append(Stream([line("ADDED", pod("a", "11"))], end="drop"))
    env.transport.watches.append(ApiStatusError(404, reason="NotFound"))
    env.transport.lists.append(gone("list"))
    env.transport.lists.append(page([pod("a", "11")], "50"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await env.clock.step()
    await env.clock.step()
    rvs = [c.get("resourceVersion") for c in env.transport.list_calls]
    assert rvs == ["0", "11", ""]
    assert env.transport.watch_calls[-1]["resourceVersion"] == "50"


async def test_expired_continue_token_falls_back_to_one_unpaged_list(env: Env) -> None:
    env.transport.lists.append(page([pod("a", "1")], "10", cont="tok"))
    env.transport.lists.append(gone("continue"))
    env.transport.lists.append(page([pod("a", "1"), pod("b", "2")], "12"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start()
    await settle()
    assert env.transport.list_calls[2] == {"resourceVersion": "0"}
    assert env.sink.calls == [("replace", ["default/a", "default/b"], "12")]


async def test_watch_list_streams_initial_state_then_keeps_watching(env: Env) -> None:
    env.transport.watches.append(
        Stream(
            [
                line("ADDED", pod("a", "3")),
                line("ADDED", pod("b", "8")),
                line("ADDED", pod("c", "5")),
                bookmark("9"),  # progress bookmark: not the end
                bookmark("10", initial_end=True),
                line("MODIFIED", pod("a", "11")),
            ],
            end="hang",
        )
    )
    reflector = env.start(use_watch_list=True)
    await settle()
    assert env.transport.list_calls == []
    (call,) = env.transport.watch_calls
    assert call["sendInitialEvents"] == "true"
    assert call["resourceVersionMatch"] == "NotOlderThan"
    assert call["resourceVersion"] == ""
    assert call["allowWatchBookmarks"] == "true"
    assert env.sink.calls == [
        ("replace", ["default/a", "default/b", "default/c"], "10"),
        ("upsert", "default/a", "11"),
    ]
    assert reflector.last_sync_resource_version == "11"
    assert env.metric("kubetrain_informer_relists_total") == 1


async def test_watch_list_refused_falls_back_to_list_for_good(env: Env) -> None:
    env.transport.watches.append(
        ApiStatusError(422, reason="Invalid", message="sendInitialEvents is forbidden")
    )
    env.transport.lists.append(page([pod("a", "1")], "10"))
    env.transport.watches.append(Stream([line("ADDED", pod("b", "11"))], end="drop"))
    env.transport.watches.append(gone())
    env.transport.lists.append(page([pod("b", "11")], "20"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start(use_watch_list=True)
    await settle()
    assert env.sink.calls[0] == ("replace", ["default/a"], "10")
    assert "sendInitialEvents" not in env.transport.watch_calls[1]
    await env.clock.step()
    await env.clock.step()
    # After a 410 the reflector relists with LIST again, not WatchList.
    assert len(env.transport.list_calls) == 2
    assert all("sendInitialEvents" not in c for c in env.transport.watch_calls[1:])


async def test_watch_list_stream_ending_before_the_end_bookmark_falls_back_to_list(
    env: Env,
) -> None:
    env.transport.watches.append(Stream([line("ADDED", pod("a", "3"))]))
    env.transport.lists.append(page([pod("a", "3")], "10"))
    env.transport.watches.append(Stream([], end="hang"))
    env.start(use_watch_list=True)
    await settle()
    assert env.transport.list_calls == [{"resourceVersion": "0", "limit": "500"}]
    assert env.sink.calls == [("replace", ["default/a"], "10")]
    assert env.transport.watch_calls[1]["resourceVersion"] == "10"


async def test_options_are_validated_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="watch_timeout_min"):
        ReflectorOptions(watch_timeout_min=700)
    with pytest.raises(ValueError, match="inactivity_timeout"):
        ReflectorOptions(inactivity_timeout=0)


async def test_refused_connections_back_off_with_jitter_not_in_lockstep() -> None:
    """A partition: every watch of two reflectors is refused. Each backs off 0.8 s doubling with
    jitter (each delay in [base, 2 * base), the base capped), so their retries drift apart instead of
    reaching the server together."""
    clock = RecordingClock()
    tasks: list[asyncio.Task[None]] = []
    for seed in (1, 2):
        transport = FakeTransport()
        transport.lists.append(page([], "10"))
        for _ in range(6):
            transport.watches.append(ConnectionRefusedError("connection refused"))
        transport.watches.append(Stream([], end="hang"))
        reflector = Reflector(
            transport=transport,
            resource=PODS,
            sink=RecordingSink(),
            options=ReflectorOptions(inactivity_timeout=None),
            clock=clock,
            rng=random.Random(seed),
        )
        tasks.append(asyncio.create_task(reflector.run()))
    try:
        for _ in range(12):
            await clock.step()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(clock.sleeps) == 12  # 6 backoffs each, no hot loop, no relist
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6]
    # the steps' ranges [base, 2 * base) are disjoint: sorted, the sleeps pair up by step
    steps = sorted(clock.sleeps)
    for i, base in enumerate(bases):
        pair = steps[2 * i : 2 * i + 2]
        assert all(base <= d < 2 * base for d in pair), (base, pair)
        assert pair[0] != pair[1]  # jitter: not the same delay
