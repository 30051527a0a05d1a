"""``dashboard/operator_metrics.py``: the operator view's series from canned exposition text."""

from __future__ import annotations

import pytest

from kubetrain.dashboard.operator_metrics import OperatorSeries, histogram_quantile


def exposition(
    *,
    depth: tuple[int, int],
    reconciles: int,
    errors: int,
    requests: int,
    throttled: int,
    queue_buckets: dict[str, int],
    phases: dict[str, int],
) -> str:
    lines = [
        "# TYPE workqueue_depth gauge",
        f'workqueue_depth{{name="pytorchjob"}} {depth[0]}',
        f'workqueue_depth{{name="tfjob"}} {depth[1]}',
        "# TYPE controller_runtime_reconcile_total counter",
        f'controller_runtime_reconcile_total{{controller="pytorchjob",result="success"}} {reconciles - errors}',
        f'controller_runtime_reconcile_total{{controller="pytorchjob",result="error"}} {errors}',
        "# TYPE rest_client_requests_total counter",
        f'rest_client_requests_total{{code="200",method="GET",host="h"}} {requests - throttled}',
        f'rest_client_requests_total{{code="429",method="GET",host="h"}} {throttled}',
        "# TYPE workqueue_queue_duration_seconds histogram",
    ]
    total = 0
    for le, count in queue_buckets.items():
        total = count
        lines.append(
            f'workqueue_queue_duration_seconds_bucket{{name="pytorchjob",le="{le}"}} {count}'
        )
    lines += [
        f'workqueue_queue_duration_seconds_count{{name="pytorchjob"}} {total}',
        'workqueue_queue_duration_seconds_sum{name="pytorchjob"} 1.0',
        "# TYPE kubetrain_jobs gauge",
    ]
    for phase, n in phases.items():
        lines.append(f'kubetrain_jobs{{framework="pytorch",phase="{phase}"}} {n}')
        lines.append(f'kubetrain_jobs{{framework="tensorflow",phase="{phase}"}} 1')
    return "\n".join(lines) + "\n"


def test_gauges_rates_and_p99_per_interval() -> None:
    series = OperatorSeries(points=3)
    first = series.ingest(
        exposition(
            depth=(2, 3),
            reconciles=100,
            errors=1,
            requests=1000,
            throttled=0,
            queue_buckets={"0.01": 90, "0.1": 100, "1.0": 100, "+Inf": 100},
            phases={"Running": 4},
        ),
        t=100.0,
    )
    assert first == {"queue_depth": 5.0}  # rates need a scrape before
    assert series.last_phases == {"Running": 5.0}
    second = series.ingest(
        exposition(
            depth=(0, 1),
            reconciles=150,
            errors=6,
            requests=1500,
            throttled=10,
            # the 100 new observations of this interval: all between 0.1 and 1 s
            queue_buckets={"0.01": 90, "0.1": 100, "1.0": 200, "+Inf": 200},
            phases={"Succeeded": 2},
        ),
        t=105.0,
    )
    assert second["queue_depth"] == 1.0
    assert second["reconcile_rate"] == pytest.approx(10.0)
    assert second["reconcile_error_rate"] == pytest.approx(1.0)
    assert second["api_request_rate"] == pytest.approx(100.0)
    assert second["api_429_rate"] == pytest.approx(2.0)
    assert second["queue_latency_p99"] == pytest.approx(0.1 + 0.9 * 0.99)
    assert "ttl_lag_p99" not in second  # the operator exposes no such histogram here
    snap = series.snapshot()
    assert snap["series"]["queue_depth"] == [[100.0, 5.0], [105.0, 1.0]]
    assert snap["series"]["reconcile_rate"] == [[105.0, pytest.approx(10.0)]]
    # a phase that went away reads 0, so its line ends instead of freezing
    assert snap["phases"] == {"Running": [[100.0, 5.0], [105.0, 0.0]], "Succeeded": [[105.0, 3.0]]}


def test_history_is_bounded_and_a_counter_reset_counts_from_zero() -> None:
    series = OperatorSeries(points=3)
    text = exposition(
        depth=(0, 0), reconciles=500, errors=0, requests=10, throttled=0,
        queue_buckets={"+Inf": 0}, phases={},
    )  # fmt: skip
    series.ingest(text, t=0.0)
    restarted = exposition(
        depth=(0, 0), reconciles=20, errors=0, requests=10, throttled=0,
        queue_buckets={"+Inf": 0}, phases={},
    )  # fmt: skip
    values = series.ingest(restarted, t=10.0)
    assert values["reconcile_rate"] == pytest.approx(2.0)  # 20 since the restart, not -480
    assert values["queue_latency_p99"] == 0.0  # nothing queued this interval
    for t in range(20, 100, 10):
        series.ingest(restarted, t=float(t))
    assert len(series.snapshot()["series"]["queue_depth"]) == 3


def test_text_that_is_no_exposition_raises_value_error() -> None:
    with pytest.raises(ValueError):
        OperatorSeries().ingest("this is { not metrics\n", t=1.0)


def test_histogram_quantile_like_prometheus() -> None:
    assert histogram_quantile(0.99, {}) is None
    assert histogram_quantile(0.5, {1.0: 0, float("inf"): 0}) is None
    assert histogram_quantile(0.5, {1.0: 10, 2.0: 20, float("inf"): 20}) == pytest.approx(1.0)
    assert histogram_quantile(0.99, {1.0: 0, float("inf"): 5}) == 1.0  # in +Inf: the last bound


async def test_the_scraper_reads_a_metrics_endpoint_and_reports_failures() -> None:
    import aiohttp
    from aiohttp import web

    from kubetrain.base.clock import FakeClock
    from kubetrain.dashboard.operator_metrics import MetricsScraper

    text = exposition(
        depth=(1, 2), reconciles=1, errors=0, requests=1, throttled=0,
        queue_buckets={"+Inf": 0}, phases={"Running": 1},
    )  # fmt: skip
    answers = [web.Response(text=text), web.Response(status=503, text="not yet")]

    async def metrics(request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    points: list[dict[str, object]] = []
    scraper = MetricsScraper(
        f"http://127.0.0.1:{port}/metrics",
        interval=5,
        series=OperatorSeries(),
        clock=FakeClock(),
        on_point=points.append,
        wall=lambda: 42.0,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await scraper.scrape_once(session)
            assert points == [
                {"t": 42.0, "values": {"queue_depth": 3.0}, "phases": {"Running": 2.0}}
            ]
            assert scraper.last_error is None
            await scraper.scrape_once(session)
            assert scraper.last_error is not None and "HTTP 503" in scraper.last_error
            assert len(points) == 1
    finally:
        await runner.cleanup()
