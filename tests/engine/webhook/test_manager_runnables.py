"""Manager runnables (the webhook server and its certificate keeper): started after the probe
servers and before the caches sync, on every replica whether or not it leads; stopped after the
controllers drained and in reverse order. ``LoopRunnable`` runs a loop as a task and cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes import Gated, eventually
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.manager import LoopRunnable, Manager, ManagerOptions, Runnable
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.resource import CONFIGMAPS, LEASES

MANAGER_LOGGER = "kubetrain.engine.manager"


class Recorder:
    """A runnable recording its start and stop in ``events``; ``running`` while started."""

    def __init__(self, name: str, events: list[str], fail_start: bool = False) -> None:
        self.name = name
        self.events = events
        self.fail_start = fail_start
        self.running = False
        self.stops = 0
        self.on_start: Callable[[], None] | None = None

    async def start(self) -> None:
        if self.on_start is not None:
            self.on_start()
        if self.fail_start:
            self.events.append(f"start failed {self.name}")
            raise OSError(98, f"{self.name}: address already in use")
        self.events.append(f"start {self.name}")
        self.running = True

    async def stop(self) -> None:
        self.stops += 1
        self.events.append(f"stop {self.name}")
        self.running = False


def quiet_options(**kw: Any) -> ManagerOptions:
    return ManagerOptions(
        metrics_bind_address="0",
        health_probe_bind_address="0",
        registry=CollectorRegistry(),
        **kw,
    )


async def finish(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_runnables_start_before_caches_sync_and_stop_after_controllers_in_reverse(
    api: ApiClient,
) -> None:
    await api.create(CONFIGMAPS, {"metadata": {"name": "before", "namespace": "default"}})
    gated = Gated(api, opened=False)
    manager = Manager(gated, quiet_options())
    events: list[str] = []
    release = asyncio.Event()
    informer = manager.informers.informer_for(CONFIGMAPS, namespace="default")
    first, second = Recorder("first", events), Recorder("second", events)
    synced_at_start: list[bool] = []
    first.on_start = lambda: synced_at_start.append(informer.has_synced)
    seen_during_drain: list[tuple[bool, bool]] = []

    async def reconcile(request: Request) -> Result:
        events.append(f"reconcile {request.key}")
        if request.name == "slow":
            await release.wait()
            # draining: the runnables are still up
            seen_during_drain.append((first.running, second.running))
            events.append("drained")
        return Result()

    manager.add(
        Controller(
            "configmaps", reconcile, options=ControllerOptions(registry=manager.options.registry)
        ).watch(informer)
    )
    manager.add_runnable(first)
    manager.add_runnable(second)
    run = asyncio.create_task(manager.run())
    try:
        # started in the order added, while the caches are still listing
        await eventually(lambda: gated.lists > 0 and events == ["start first", "start second"])
        assert synced_at_start == [False]
        assert not informer.has_synced
        await asyncio.sleep(0.05)
        assert events == ["start first", "start second"]  # no controller yet

        gated.opened.set()
        await eventually(lambda: "reconcile default/before" in events)
        await api.create(CONFIGMAPS, {"metadata": {"name": "slow", "namespace": "default"}})
        await eventually(lambda: "reconcile default/slow" in events)

        manager.request_stop()
        await asyncio.sleep(0.05)
        assert not run.done()
        assert first.running and second.running  # kept up while the controller drains
        release.set()
        await asyncio.wait_for(run, 5.0)
    finally:
        release.set()
        await finish(run)
    assert seen_during_drain == [(True, True)]
    assert events[-3:] == ["drained", "stop second", "stop first"]
    assert first.stops == 1 and second.stops == 1


async def test_runnables_run_on_a_replica_that_does_not_lead(api: ApiClient) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await api.create(
        LEASES,
        {
            "metadata": {"name": "held-elsewhere", "namespace": "default"},
            "spec": {
                "holderIdentity": "another-replica",
                "leaseDurationSeconds": 3600,
                "acquireTime": now,
                "renewTime": now,
            },
        },
    )
    manager = Manager(
        api,
        quiet_options(
            leader_elect=True,
            leader_election_id="held-elsewhere",
            leader_election_namespace="default",
            leader_election_identity="me",
            lease_duration=2.0,
            renew_deadline=1.5,
            retry_period=0.2,
        ),
    )
    events: list[str] = []
    runnable = Recorder("webhooks", events)
    manager.add_runnable(runnable)
    reconciled: list[str] = []

    async def reconcile(request: Request) -> Result:
        reconciled.append(request.key)
        return Result()

    informer = manager.informers.informer_for(CONFIGMAPS, namespace="default")
    manager.add(
        Controller(
            "configmaps", reconcile, options=ControllerOptions(registry=manager.options.registry)
        ).watch(informer)
    )
    await api.create(CONFIGMAPS, {"metadata": {"name": "cm", "namespace": "default"}})
    run = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: manager.elector is not None and informer.has_synced)
        assert runnable.running
        await asyncio.sleep(0.1)
        assert not manager.is_leader
        assert reconciled == []
        manager.request_stop()
        await asyncio.wait_for(run, 5.0)
    finally:
        await finish(run)
    assert events == ["start webhooks", "stop webhooks"]


async def test_failing_runnable_start_fails_run_and_stops_the_started_ones(
    api: ApiClient,
) -> None:
    manager = Manager(api, quiet_options())
    events: list[str] = []
    ok, bad, never = (
        Recorder("ok", events),
        Recorder("bad", events, fail_start=True),
        Recorder("never", events),
    )
    for runnable in (ok, bad, never):
        manager.add_runnable(runnable)
    with pytest.raises(OSError, match="address already in use"):
        await asyncio.wait_for(manager.run(), 5.0)
    assert events == ["start ok", "start failed bad", "stop ok"]
    assert never.stops == 0 and bad.stops == 0


async def test_a_runnable_failing_to_stop_does_not_block_the_others(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    manager = Manager(api, quiet_options())
    events: list[str] = []
    first = Recorder("first", events)

    class Broken(Recorder):
        async def stop(self) -> None:
            await super().stop()
            raise RuntimeError("cannot stop")

    broken = Broken("broken", events)
    manager.add_runnable(first)
    manager.add_runnable(broken)
    run = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: manager.is_leader)
        with caplog.at_level(logging.ERROR, logger=MANAGER_LOGGER):
            manager.request_stop()
            await asyncio.wait_for(run, 5.0)
    finally:
        await finish(run)
    assert events == ["start first", "start broken", "stop broken", "stop first"]
    assert any("stopping" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_add_runnable_after_run_raises(api: ApiClient) -> None:
    manager = Manager(api, quiet_options())
    run = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: manager.is_leader)
        with pytest.raises(RuntimeError, match="before run"):
            manager.add_runnable(Recorder("late", []))
        manager.request_stop()
        await asyncio.wait_for(run, 5.0)
    finally:
        await finish(run)


def test_loop_runnable_is_a_runnable() -> None:
    async def loop() -> None:
        await asyncio.Event().wait()

    runnable: Runnable = LoopRunnable("keeper", loop)
    assert repr(runnable) == "LoopRunnable('keeper')"


async def test_loop_runnable_cancels_its_loop_on_stop(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def loop() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    runnable = LoopRunnable("certificate keeper", loop)
    await runnable.stop()  # before start: nothing to do
    with caplog.at_level(logging.ERROR, logger=MANAGER_LOGGER):
        await runnable.start()
        await asyncio.wait_for(started.wait(), 5.0)
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "certificate keeper"]
        assert len(tasks) == 1 and not tasks[0].done()
        await runnable.stop()
        assert cancelled == [True]
        assert tasks[0].cancelled()
        await runnable.stop()  # idempotent
    assert cancelled == [True]
    assert not [r for r in caplog.records if r.name == MANAGER_LOGGER]  # a stop is not an error


async def test_loop_runnable_that_ends_early_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def returns() -> None:
        return None

    async def raises() -> None:
        raise ValueError("broken loop")

    with caplog.at_level(logging.ERROR, logger=MANAGER_LOGGER):
        early = LoopRunnable("returns early", returns)
        await early.start()
        failing = LoopRunnable("raises", raises)
        await failing.start()
        for _ in range(10):
            await asyncio.sleep(0)
        await early.stop()
        await failing.stop()
    messages = {r.getMessage(): r for r in caplog.records if r.name == MANAGER_LOGGER}
    assert "returns early stopped unexpectedly" in messages
    assert "raises stopped unexpectedly" in messages
    exc_info = messages["raises stopped unexpectedly"].exc_info
    assert exc_info is not None and isinstance(exc_info[1], ValueError)


async def test_loop_runnable_in_a_manager_is_cancelled_on_stop(api: ApiClient) -> None:
    ticks: list[int] = []
    cancelled = asyncio.Event()

    async def loop() -> None:
        try:
            while True:
                ticks.append(len(ticks))
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    manager = Manager(api, quiet_options())
    events: list[str] = []
    after = Recorder("after", events)
    manager.add_runnable(LoopRunnable("ticker", loop))
    manager.add_runnable(after)
    run = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: len(ticks) >= 2 and manager.is_leader)
        assert not cancelled.is_set()
        manager.request_stop()
        await asyncio.wait_for(run, 5.0)
    finally:
        await finish(run)
    assert cancelled.is_set()
    assert events == ["start after", "stop after"]
    count = len(ticks)
    await asyncio.sleep(0.05)
    assert len(ticks) == count  # no longer running
