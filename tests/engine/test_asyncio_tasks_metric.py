"""``kubetrain_asyncio_tasks``: the tasks of the loop that serves the scrape, counted at scrape."""

from __future__ import annotations

import asyncio

from kubetrain.engine.metrics import AsyncioTasksCollector, new_registry


async def test_counts_the_running_loops_tasks() -> None:
    registry = new_registry()
    before = registry.get_sample_value("kubetrain_asyncio_tasks")
    assert before is not None and before >= 1  # this test's own task
    gate = asyncio.Event()
    tasks = [asyncio.create_task(gate.wait()) for _ in range(5)]
    await asyncio.sleep(0)
    assert registry.get_sample_value("kubetrain_asyncio_tasks") == before + 5
    gate.set()
    await asyncio.gather(*tasks)
    assert registry.get_sample_value("kubetrain_asyncio_tasks") == before


def test_outside_a_loop_reports_nothing_or_the_given_loop() -> None:
    assert new_registry().get_sample_value("kubetrain_asyncio_tasks") is None
    loop = asyncio.new_event_loop()
    try:
        family = list(AsyncioTasksCollector(loop).collect())
        assert family[0].samples[0].value == 0
    finally:
        loop.close()
    assert list(AsyncioTasksCollector(loop).collect()) == []
