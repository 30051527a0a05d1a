"""workqueue_* metrics: controller-runtime names, labels, buckets and values."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.engine.queue import LOW_PRIORITY, QueueOptions
from kubetrain.engine.rate_limiting_queue import RateLimitingQueue
from kubetrain.engine.ratelimiters import ItemExponentialFailureRateLimiter
from kubetrain.engine.sharding import ShardedQueue, ShardingOptions
from kubetrain.engine.workqueue_metrics import DURATION_BUCKETS, PrometheusMetricsProvider

LABELS = {"name": "tfjob", "controller": "tfjob"}


def make_queue() -> tuple[RateLimitingQueue[str], FakeClock, CollectorRegistry]:
    registry = CollectorRegistry()
    clock = FakeClock(start=100.0)
    options = QueueOptions(
        name="tfjob", clock=clock, metrics_provider=PrometheusMetricsProvider(registry=registry)
    )
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=1.0
    )
    return RateLimitingQueue(options, rate_limiter=limiter), clock, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**LABELS, **labels})


def test_adds_and_depth_count_only_non_deduplicated_adds() -> None:
    queue, _, registry = make_queue()
    queue.add("ns/a")
    queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/c", priority=LOW_PRIORITY)
    assert value(registry, "workqueue_adds_total") == 3
    assert value(registry, "workqueue_depth", priority="0") == 2
    assert value(registry, "workqueue_depth", priority="-100") == 1
    queue.get_nowait()
    assert value(registry, "workqueue_depth", priority="0") == 1


def test_depth_follows_a_raised_priority() -> None:
    queue, _, registry = make_queue()
    queue.add("ns/a", priority=LOW_PRIORITY)
    queue.add("ns/a")
    assert value(registry, "workqueue_depth", priority="-100") == 0
    assert value(registry, "workqueue_depth", priority="0") == 1
    assert value(registry, "workqueue_adds_total") == 1


def test_queue_and_work_durations_use_the_clock() -> None:
    queue, clock, registry = make_queue()
    queue.add("ns/a")
    clock.advance(0.25)
    key = queue.get_nowait()
    clock.advance(2.0)
    queue.done(key)
    assert value(registry, "workqueue_queue_duration_seconds_count") == 1
    assert value(registry, "workqueue_queue_duration_seconds_sum") == pytest.approx(0.25)
    assert value(registry, "workqueue_work_duration_seconds_count") == 1
    assert value(registry, "workqueue_work_duration_seconds_sum") == pytest.approx(2.0)


def test_queue_duration_of_a_delayed_item_starts_when_it_is_ready() -> None:
    queue, clock, registry = make_queue()
    queue.add_after("ns/a", 5)
    assert value(registry, "workqueue_depth", priority="0") in (None, 0)
    clock.advance(5)
    assert value(registry, "workqueue_depth", priority="0") == 1
    clock.advance(1)
    queue.get_nowait()
    assert value(registry, "workqueue_queue_duration_seconds_sum") == pytest.approx(1.0)


def test_unfinished_work_and_longest_running_processor() -> None:
    queue, clock, registry = make_queue()
    queue.add("ns/a")
    queue.add("ns/b")
    queue.get_nowait()
    clock.advance(3)
    queue.get_nowait()
    clock.advance(1)
    assert value(registry, "workqueue_unfinished_work_seconds") == pytest.approx(4 + 1)
    assert value(registry, "workqueue_longest_running_processor_seconds") == pytest.approx(4)
    queue.done("ns/a")
    queue.done("ns/b")
    assert value(registry, "workqueue_unfinished_work_seconds") == 0
    assert value(registry, "workqueue_longest_running_processor_seconds") == 0


def test_retries_count_adds_with_a_delay_only() -> None:
    queue, _, registry = make_queue()
    queue.add_after("ns/a", 0)
    assert value(registry, "workqueue_retries_total") == 0
    queue.add_after("ns/b", 1)
    queue.add_rate_limited("ns/c")
    assert value(registry, "workqueue_retries_total") == 2


def test_priority_label_is_capped_at_25_values() -> None:
    queue, _, registry = make_queue()
    for priority in range(30):
        queue.add(f"ns/{priority}", priority=priority)
    labelled = [p for p in range(30) if value(registry, "workqueue_depth", priority=str(p))]
    assert len(labelled) == 25
    assert value(registry, "workqueue_depth", priority="exceeded_cardinality_limit") == 5


def test_duration_buckets_are_controller_runtimes() -> None:
    assert len(DURATION_BUCKETS) == 12
    assert DURATION_BUCKETS[0] == pytest.approx(1e-8)
    assert DURATION_BUCKETS[-1] == pytest.approx(1e3)
    queue, _, registry = make_queue()
    queue.add("ns/a")
    queue.get_nowait()
    assert value(registry, "workqueue_queue_duration_seconds_bucket", le="1000.0") == 1


def test_controller_label_can_differ_from_name() -> None:
    registry = CollectorRegistry()
    options = QueueOptions(
        name="pods",
        controller="mpijob",
        clock=FakeClock(),
        metrics_provider=PrometheusMetricsProvider(registry=registry),
    )
    queue: RateLimitingQueue[str] = RateLimitingQueue(options)
    queue.add("ns/a")
    sample = registry.get_sample_value(
        "workqueue_adds_total", {"name": "pods", "controller": "mpijob"}
    )
    assert sample == 1


def test_unnamed_queue_has_no_metrics() -> None:
    registry = CollectorRegistry()
    options = QueueOptions(
        clock=FakeClock(), metrics_provider=PrometheusMetricsProvider(registry=registry)
    )
    queue: RateLimitingQueue[str] = RateLimitingQueue(options)
    queue.add("ns/a")
    queue.done(queue.get_nowait())
    samples = [s for metric in registry.collect() for s in metric.samples]
    assert samples == []


def test_shards_report_as_one_queue() -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    queue: ShardedQueue[str] = ShardedQueue(
        ShardingOptions(
            shards=4,
            queue=QueueOptions(
                name="tfjob",
                clock=clock,
                metrics_provider=PrometheusMetricsProvider(registry=registry),
            ),
        )
    )
    keys = [f"ns/job-{index}" for index in range(20)]
    for key in keys:
        queue.add(key)
    assert len({queue.shard_index(key) for key in keys}) > 1
    assert value(registry, "workqueue_adds_total") == 20
    assert value(registry, "workqueue_depth", priority="0") == 20
    first, second = queue.get_nowait(), queue.get_nowait()
    assert queue.shard_index(first) != queue.shard_index(second)
    clock.advance(2)
    assert value(registry, "workqueue_unfinished_work_seconds") == pytest.approx(4)
    assert value(registry, "workqueue_longest_running_processor_seconds") == pytest.approx(2)
