"""Controller: the reconcile outcome table, backoff, timeouts, one key per worker, drain, metrics.

Time is a ``FakeClock`` wherever the controller reads it (delays, backoff, timeouts), so these
tests state exactly when a key comes back; only drain-with-timeout uses (short) real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.metrics import RECONCILE_TIME_BUCKETS
from kubetrain.engine.reconcile import Request, Result, TerminalError

Reconcile = Callable[[Request], Awaitable[Result]]


class Harness:
    """A controller on a fake clock with its own registry, plus a record of reconcile calls."""

    def __init__(self, reconcile: Reconcile, **options: object) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.calls: list[tuple[float, Request]] = []

        async def recorded(request: Request) -> Result:
            self.calls.append((self.clock.monotonic(), request))
            return await reconcile(request)

        self.controller = Controller(
            "jobs",
            recorded,
            options=ControllerOptions(
                clock=self.clock,
                registry=self.registry,
                **options,  # type: ignore[arg-type]
            ),
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.controller.run())
        await settle()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await settle()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"controller": "jobs", **labels})
        return 0.0 if value is None else value

    def times(self, key: str) -> list[float]:
        return [at for at, request in self.calls if request.key == key]


async def settle(turns: int = 20) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


@pytest.fixture
async def stopper() -> AsyncIterator[list[Harness]]:
    started: list[Harness] = []
    yield started
    for harness in started:
        await harness.controller.stop(timeout=1.0)
        if harness.task is not None:
            harness.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await harness.task


async def done() -> Result:
    return Result()


async def test_success_forgets_and_counts(stopper: list[Harness]) -> None:
    async def reconcile(request: Request) -> Result:
        return Result()

    h = Harness(reconcile, shards=2, workers_per_shard=3)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/a")
    await settle()
    assert [r.key for _, r in h.calls] == ["ns/a"]
    request = h.calls[0][1]
    assert (request.namespace, request.name) == ("ns", "a")
    assert len(request.reconcile_id) == 12
    assert h.metric("controller_runtime_reconcile_total", result="success") == 1
    assert h.metric("controller_runtime_reconcile_total", result="error") == 0
    assert h.metric("controller_runtime_reconcile_time_seconds_count") == 1
    assert h.metric("controller_runtime_max_concurrent_reconciles") == 6
    assert h.metric("controller_runtime_active_workers") == 0
    assert h.controller.queue.num_requeues("ns/a") == 0
    assert (
        h.registry.get_sample_value("workqueue_adds_total", {"name": "jobs", "controller": "jobs"})
        == 1
    )


async def test_requeue_after_comes_back_after_exactly_that_delay(stopper: list[Harness]) -> None:
    async def reconcile(request: Request) -> Result:
        return Result(requeue_after=30.0)

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/ttl")
    await settle()
    await h.advance(29.9)
    assert h.times("ns/ttl") == [0.0]
    await h.advance(0.1)
    assert h.times("ns/ttl") == [0.0, 30.0]
    assert h.metric("controller_runtime_reconcile_total", result="requeue_after") == 2
    assert h.controller.queue.num_requeues("ns/ttl") == 0


async def test_requeue_after_resets_the_backoff_of_earlier_failures(
    stopper: list[Harness],
) -> None:
    outcomes = iter([RuntimeError("down"), RuntimeError("down"), Result(requeue_after=10.0)])

    async def reconcile(request: Request) -> Result:
        outcome = next(outcomes, Result())
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/a")
    await settle()
    await h.advance(0.005)
    assert h.controller.queue.num_requeues("ns/a") == 2
    await h.advance(0.010)
    assert h.controller.queue.num_requeues("ns/a") == 0
    assert len(h.times("ns/a")) == 3


async def test_errors_retry_with_exponential_backoff(stopper: list[Harness]) -> None:
    async def reconcile(request: Request) -> Result:
        raise ConnectionError("API server unreachable")

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/a")
    await settle()
    for _ in range(6):
        deadline = h.clock.next_deadline()
        assert deadline is not None
        await h.advance(deadline - h.clock.monotonic())
    times = h.times("ns/a")
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps == [0.005, 0.01, 0.02, 0.04, 0.08, 0.16]
    assert h.metric("controller_runtime_reconcile_errors_total") == 7
    assert h.metric("controller_runtime_reconcile_total", result="error") == 7
    assert h.metric("controller_runtime_reconcile_panics_total") == 0
    assert h.controller.queue.num_requeues("ns/a") == 7


async def test_terminal_error_is_not_retried(stopper: list[Harness]) -> None:
    async def reconcile(request: Request) -> Result:
        raise TerminalError("spec.replicas is invalid")

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/bad")
    await settle()
    await h.advance(2000.0)
    assert h.times("ns/bad") == [0.0]
    assert h.metric("controller_runtime_terminal_reconcile_errors_total") == 1
    assert h.metric("controller_runtime_reconcile_errors_total") == 1
    assert h.metric("controller_runtime_reconcile_total", result="error") == 1
    assert h.controller.queue.num_requeues("ns/bad") == 0
    # A new event still reconciles it.
    h.controller.queue.add("ns/bad")
    await settle()
    assert len(h.times("ns/bad")) == 2


async def test_requeue_true_is_rate_limited(stopper: list[Harness]) -> None:
    async def reconcile(request: Request) -> Result:
        return Result(requeue=True)

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/a")
    await settle()
    await h.advance(0.004)
    assert len(h.times("ns/a")) == 1
    await h.advance(0.001)
    assert len(h.times("ns/a")) == 2
    assert h.metric("controller_runtime_reconcile_total", result="requeue") == 2
    assert h.controller.queue.num_requeues("ns/a") == 2


async def test_programming_errors_count_as_panics_and_are_retried(
    stopper: list[Harness],
) -> None:
    async def reconcile(request: Request) -> Result:
        return {}["missing"]  # type: ignore[no-any-return]

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/a")
    await settle()
    await h.advance(0.005)
    assert len(h.times("ns/a")) == 2
    assert h.metric("controller_runtime_reconcile_panics_total") == 2
    assert h.metric("controller_runtime_reconcile_errors_total") == 2


async def test_returning_something_else_than_a_result_is_an_error(
    stopper: list[Harness],
) -> None:
    async def reconcile(request: Request) -> Result:
        return None  # type: ignore[return-value]

    h = Harness(reconcile)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/a")
    await settle()
    assert h.metric("controller_runtime_reconcile_total", result="error") == 1
    assert h.metric("controller_runtime_reconcile_total", result="success") == 0


async def test_timeout_cancels_the_reconcile_and_retries(stopper: list[Harness]) -> None:
    cancelled: list[str] = []
    h: Harness

    async def reconcile(request: Request) -> Result:
        try:
            await h.clock.sleep(100.0)
        except asyncio.CancelledError:
            cancelled.append(request.reconcile_id)
            raise
        return Result()

    h = Harness(reconcile, reconcile_timeout=5.0)
    stopper.append(h)
    await h.start()
    h.controller.queue.add("ns/slow")
    await settle()
    await h.advance(4.9)
    assert cancelled == [] and h.metric("controller_runtime_active_workers") == 1
    await h.advance(0.1)
    assert cancelled == [h.calls[0][1].reconcile_id]
    assert h.metric("controller_runtime_reconcile_timeouts_total") == 1
    assert h.metric("controller_runtime_reconcile_errors_total") == 1
    assert h.metric("controller_runtime_active_workers") == 0
    await h.advance(0.005)
    assert h.times("ns/slow") == [0.0, 5.005]
    # The worker survived its cancelled reconcile: other keys still flow.
    assert h.controller.is_running


async def test_one_key_is_never_reconciled_concurrently(stopper: list[Harness]) -> None:
    in_flight: set[str] = set()
    overlaps: list[str] = []
    passes: set[str] = set()
    peak = 0
    h: Harness

    async def reconcile(request: Request) -> Result:
        nonlocal peak
        if request.key in in_flight:
            overlaps.append(request.key)
        in_flight.add(request.key)
        peak = max(peak, len(in_flight))
        first_pass = request.key not in passes
        passes.add(request.key)
        for _ in range(3):
            await asyncio.sleep(0)
            if first_pass:
                h.controller.queue.add(request.key)  # re-added while processing
        in_flight.discard(request.key)
        return Result()

    h = Harness(reconcile, shards=4, workers_per_shard=3)
    stopper.append(h)
    await h.start()
    keys = [f"ns/job-{i % 10}" for i in range(200)]
    for key in keys:
        h.controller.queue.add(key)
    for _ in range(10):
        await settle(50)
    assert overlaps == []
    assert peak > 1, "the test must actually run keys in parallel"
    # 20 adds per key before processing collapse into one pass; three re-adds during that
    # pass into exactly one more.
    assert sorted(r.key for _, r in h.calls) == sorted([*set(keys), *set(keys)])


async def test_stop_drains_in_flight_and_ready_keys() -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def reconcile(request: Request) -> Result:
        await release.wait()
        finished.append(request.key)
        return Result()

    h = Harness(reconcile)
    await h.start()
    h.controller.queue.add("ns/a")
    h.controller.queue.add("ns/b")
    await settle()
    stopping = asyncio.create_task(h.controller.stop(timeout=None))
    await settle()
    assert not stopping.done()
    h.controller.queue.add("ns/late")  # ignored: shutting down
    release.set()
    assert await stopping is True
    assert finished == ["ns/a", "ns/b"]
    assert h.task is not None
    await asyncio.wait_for(h.task, 1.0)


async def test_stop_cancels_what_does_not_drain_in_time() -> None:
    cancelled: list[str] = []

    async def reconcile(request: Request) -> Result:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(request.key)
            raise
        return Result()

    h = Harness(reconcile)
    await h.start()
    h.controller.queue.add("ns/stuck")
    await settle()
    assert await h.controller.stop(timeout=0.05) is False
    assert cancelled == ["ns/stuck"]
    assert h.metric("controller_runtime_active_workers") == 0
    assert h.task is not None
    await asyncio.wait_for(h.task, 1.0)


async def test_stop_before_run_and_run_once() -> None:
    h = Harness(lambda request: done())
    assert await h.controller.stop(timeout=0) is True
    await asyncio.wait_for(h.controller.run(), 1.0)  # returns at once: already stopped
    with pytest.raises(RuntimeError, match="already ran"):
        await h.controller.run()


def test_options_are_validated_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="shards"):
        ControllerOptions(shards=0)
    with pytest.raises(ValueError, match="workers_per_shard"):
        ControllerOptions(workers_per_shard=0)
    with pytest.raises(ValueError, match="reconcile_timeout"):
        ControllerOptions(reconcile_timeout=0)
    with pytest.raises(ValueError, match="requeue_after"):
        Result(requeue_after=-1)


def test_reconcile_time_buckets_are_controller_runtimes() -> None:
    registry = CollectorRegistry()
    Controller("x", lambda request: done(), options=ControllerOptions(registry=registry))
    bounds = [
        float(s.labels["le"])
        for metric in registry.collect()
        if metric.name == "controller_runtime_reconcile_time_seconds"
        for s in metric.samples
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    ]
    assert bounds == list(RECONCILE_TIME_BUCKETS)
    assert bounds[:5] == [0.005, 0.01, 0.025, 0.05, 0.1] and bounds[-3:] == [40.0, 50.0, 60.0]
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            registry.get_sample_value(
                "controller_runtime_reconcile_total", {"controller": "x", "result": result}
            )
            == 0
        )
