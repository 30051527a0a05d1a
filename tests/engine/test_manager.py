"""Manager: ordered start and stop, probes and metrics over HTTP, leader election with two
managers on the embedded cluster, lost leadership, one fake clock for everything, signals and the
uvloop runner.

Leader election uses short durations (2 s / 1.5 s / 0.2 s) so takeover is observable in a few
seconds; bounds assert behaviour (not before expiry, within about one lease), not speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from fakes import Gated, eventually
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.engine import loop
from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.health import parse_bind_address
from kubetrain.engine.manager import LeaderElectionLost, Manager, ManagerOptions, run_manager
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import CONFIGMAPS, LEASES

LEASE, RENEW, RETRY = 2.0, 1.5, 0.2
LOCAL = "127.0.0.1:0"


async def configmap(api: ApiClient, name: str) -> None:
    await api.create(
        CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}
    )


async def get(session: aiohttp.ClientSession, port: int, path: str) -> tuple[int, str]:
    async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.text()


def has_port(manager: Manager) -> bool:
    try:
        return manager.health_port > 0
    except RuntimeError:
        return False


async def finish(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, LeaderElectionLost):
        await task


async def test_ordered_start_readyz_gating_and_ordered_stop(api: ApiClient) -> None:
    await configmap(api, "before")
    gated = Gated(api)
    gated.opened.clear()
    registry = CollectorRegistry()
    manager = Manager(
        gated,
        ManagerOptions(
            metrics_bind_address=LOCAL, health_probe_bind_address=LOCAL, registry=registry
        ),
    )
    release = asyncio.Event()
    reconciled: list[str] = []
    during_drain: list[tuple[int, bool]] = []

    async with aiohttp.ClientSession() as session:

        async def reconcile(request: Request) -> Result:
            reconciled.append(request.key)
            if request.name == "slow":
                await release.wait()
                # Draining: servers and caches must still be up.
                status, _ = await get(session, manager.health_port, "/healthz")
                during_drain.append((status, informer.has_synced))
            return Result()

        informer = manager.informers.informer_for(CONFIGMAPS, namespace="default")
        manager.add(
            Controller("configmaps", reconcile, options=ControllerOptions(registry=registry)).watch(
                informer
            )
        )
        run = asyncio.create_task(manager.run())
        try:
            await eventually(lambda: has_port(manager) and gated.lists > 0)
            # 1. Servers are up while the caches are still listing; not ready yet.
            assert await get(session, manager.health_port, "/healthz") == (200, "ok")
            status, text = await get(session, manager.health_port, "/readyz")
            assert status == 500 and "[-]informers failed: not synced" in text
            status, text = await get(session, manager.metrics_port, "/metrics")
            assert status == 200 and "controller_runtime_max_concurrent_reconciles" in text
            await asyncio.sleep(0.1)
            assert reconciled == []  # 2. no controller before the caches synced

            gated.opened.set()
            await eventually(lambda: reconciled == ["default/before"])
            status, text = await get(session, manager.health_port, "/readyz?verbose")
            assert status == 200 and "[+]informers ok" in text
            await configmap(api, "slow")
            await eventually(lambda: "default/slow" in reconciled)

            # 3. Stop: the in-flight reconcile drains while servers and caches still run.
            manager.request_stop()
            await asyncio.sleep(0.1)
            assert not run.done()
            release.set()
            await asyncio.wait_for(run, 5.0)
            assert during_drain == [(200, True)]
            with pytest.raises(aiohttp.ClientConnectionError):
                await get(session, manager.health_port, "/healthz")
        finally:
            await finish(run)


async def test_checks_verbose_exclude_and_single(api: ApiClient) -> None:
    manager = Manager(
        api,
        ManagerOptions(
            metrics_bind_address="0",
            health_probe_bind_address=LOCAL,
            registry=CollectorRegistry(),
        ),
    )
    healthy = True

    def webhook() -> None:
        if not healthy:
            raise RuntimeError("certificate not loaded")

    manager.add_readyz_check("webhook", webhook)
    with pytest.raises(ValueError, match="already has a check named 'webhook'"):
        manager.add_readyz_check("webhook", webhook)
    run = asyncio.create_task(manager.run())
    try:
        async with aiohttp.ClientSession() as session:
            await eventually(lambda: has_port(manager))
            port = manager.health_port
            await eventually(lambda: manager.is_leader)  # no election: "leading" once synced
            assert await get(session, port, "/readyz") == (200, "ok")
            healthy = False
            status, text = await get(session, port, "/readyz")
            assert status == 500
            assert "[+]informers ok" in text and "[-]webhook failed: certificate not loaded" in text
            assert (await get(session, port, "/readyz?exclude=webhook"))[0] == 200
            assert (await get(session, port, "/readyz/webhook"))[0] == 500
            assert (await get(session, port, "/readyz/informers")) == (200, "ok")
            assert (await get(session, port, "/readyz/nope"))[0] == 404
            with pytest.raises(RuntimeError, match="/metrics"):
                assert manager.metrics_port  # disabled with "0"
        manager.request_stop()
        await asyncio.wait_for(run, 5.0)
    finally:
        await finish(run)


def test_bind_addresses_and_options() -> None:
    assert parse_bind_address(":8080") == (None, 8080)
    assert parse_bind_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind_address("[::1]:9000") == ("::1", 9000)
    assert parse_bind_address("0") is None and parse_bind_address("") is None
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_bind_address("localhost")
    with pytest.raises(ValueError, match="HOST:PORT"):
        ManagerOptions(metrics_bind_address=":http")
    with pytest.raises(ValueError, match="graceful_shutdown_timeout"):
        ManagerOptions(graceful_shutdown_timeout=-1)
    defaults = ManagerOptions()
    assert (defaults.metrics_bind_address, defaults.health_probe_bind_address) == (
        ":8080",
        ":8081",
    )
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (
        15.0,
        10.0,
        2.0,
    )
    assert defaults.graceful_shutdown_timeout == 30.0


def test_one_clock_reaches_the_informers_and_is_required_of_controllers() -> None:
    async def reconcile(request: Request) -> Result:
        return Result()

    clock = FakeClock()
    transport: Any = object()  # never used: nothing runs
    manager = Manager(transport, ManagerOptions(clock=clock, registry=CollectorRegistry()))
    assert manager.clock is clock
    assert manager.informers.clock is clock
    registry = CollectorRegistry()
    on_clock = Controller("a", reconcile, options=ControllerOptions(clock=clock, registry=registry))
    assert manager.add(on_clock) is on_clock
    with pytest.raises(ValueError, match=r"ControllerOptions\(clock=manager.clock\)"):
        manager.add(Controller("b", reconcile, options=ControllerOptions(registry=registry)))
    with pytest.raises(ValueError, match=r"SharedInformerFactory\(clock=options.clock\)"):
        Manager(transport, ManagerOptions(clock=clock), informers=SharedInformerFactory(transport))
    # Real time everywhere by default: the defaults agree.
    assert Manager(transport, ManagerOptions(registry=CollectorRegistry())).add(
        Controller("c", reconcile, options=ControllerOptions(registry=registry))
    )


async def test_manager_controllers_informers_and_leader_election_run_on_one_fake_clock(
    api: ApiClient,
) -> None:
    """ManagerOptions(clock=) is the only clock given: the informers, the Lease and the
    controller (built with ``manager.clock``) follow it; requeue_after waits for fake time."""
    clock = FakeClock(wall_start=datetime(2030, 1, 1, tzinfo=UTC))
    registry = CollectorRegistry()
    manager = Manager(
        api,
        ManagerOptions(
            metrics_bind_address="0",
            health_probe_bind_address="0",
            leader_elect=True,
            leader_election_id="kubetrain-fake-time",
            leader_election_namespace="default",
            leader_election_identity="only",
            registry=registry,
            clock=clock,
        ),
    )
    ticks: list[float] = []

    async def reconcile(request: Request) -> Result:
        if request.name != "fake-time-tick":
            return Result()
        ticks.append(clock.monotonic())
        return Result(requeue_after=60.0)

    informer = manager.informers.informer_for(CONFIGMAPS, namespace="default")
    options = ControllerOptions(clock=manager.clock, registry=registry)
    manager.add(Controller("ticks", reconcile, options=options).watch(informer))
    await configmap(api, "fake-time-tick")
    run = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: ticks == [0.0])
        spec = (await api.get(LEASES, "default", "kubetrain-fake-time"))["spec"]
        assert spec["holderIdentity"] == "only"
        assert spec["acquireTime"] == "2030-01-01T00:00:00.000000Z"  # the fake wall time

        clock.advance(59.5)
        await asyncio.sleep(0.2)
        assert ticks == [0.0]  # not due yet on the fake clock
        clock.advance(0.5)
        await eventually(lambda: ticks == [0.0, 60.0])
        # The elector renewed on the fake clock too: its renewals carry the fake wall time.
        await eventually(lambda: manager.is_leader)
        spec = (await api.get(LEASES, "default", "kubetrain-fake-time"))["spec"]
        assert spec["renewTime"].startswith("2030-01-01T00:0")
        assert spec["renewTime"] > spec["acquireTime"]
    finally:
        manager.request_stop()
        await asyncio.wait_for(run, 5.0)


class Replica:
    """One operator replica: a manager with leader election and a configmap controller that
    records, for every reconcile, who ran it and whether it led at that moment."""

    def __init__(
        self,
        name: str,
        transport: Any,
        record: list[tuple[str, str, bool, float]],
        *,
        release: bool = False,
        block: asyncio.Event | None = None,
        start: bool = True,
    ) -> None:
        self.name = name
        registry = CollectorRegistry()
        self.manager = Manager(
            transport,
            ManagerOptions(
                metrics_bind_address="0",
                health_probe_bind_address="0",
                leader_elect=True,
                leader_election_id="kubetrain-test",
                leader_election_namespace="default",
                leader_election_identity=name,
                lease_duration=LEASE,
                renew_deadline=RENEW,
                retry_period=RETRY,
                leader_election_release_on_cancel=release,
                registry=registry,
            ),
        )
        self.cancelled: list[str] = []

        async def reconcile(request: Request) -> Result:
            elector = self.manager.elector
            leading = elector is not None and elector.is_leader
            record.append((name, request.key, leading, asyncio.get_running_loop().time()))
            if block is not None:
                try:
                    await block.wait()
                except asyncio.CancelledError:
                    self.cancelled.append(request.key)
                    raise
            return Result()

        informer = self.manager.informers.informer_for(CONFIGMAPS, namespace="default")
        self.manager.add(
            Controller("cm", reconcile, options=ControllerOptions(registry=registry)).watch(
                informer
            )
        )
        if start:
            self.task = asyncio.create_task(self.manager.run(), name=f"replica {name}")

    @property
    def leading(self) -> bool:
        elector = self.manager.elector
        return elector is not None and elector.is_leader


async def test_two_managers_one_leads_the_other_takes_over_and_never_reconciles_before(
    api: ApiClient,
) -> None:
    for i in range(3):
        await configmap(api, f"cm-{i}")
    record: list[tuple[str, str, bool, float]] = []
    a = Replica("a", api, record)
    b = Replica("b", api, record)
    replicas = {"a": a, "b": b}
    try:
        await eventually(lambda: a.leading or b.leading)
        leader = a if a.leading else b
        other = b if leader is a else a
        await configmap(api, "while-leading")
        expected = {f"default/cm-{i}" for i in range(3)} | {"default/while-leading"}
        await eventually(
            lambda: {key for who, key, _, _ in record if who == leader.name} >= expected
        )
        await asyncio.sleep(4 * RETRY)  # several renew and retry rounds
        assert not other.leading
        assert all(who == leader.name for who, _, _, _ in record)

        loop_time = asyncio.get_running_loop().time
        killed_at = loop_time()
        await finish(leader.task)  # a kill: the Lease is not released
        await configmap(api, "during-failover")
        await eventually(lambda: other.leading, timeout=LEASE + 3 * RETRY * 2.2 + 1.0)
        took = loop_time() - killed_at
        assert took >= LEASE - 2 * RETRY * 2.2, f"took over a live lease after {took:.2f}s"
        await eventually(
            lambda: (
                {key for who, key, _, _ in record if who == other.name}
                >= expected | {"default/during-failover"}
            )
        )
        # The one property that matters: nobody reconciled without leading, and the replicas
        # never reconciled at the same time (the new leader only after the old one died).
        assert all(leading for _, _, leading, _ in record), record
        first_of_other = min(at for who, _, _, at in record if who == other.name)
        assert first_of_other >= killed_at
        assert all(at <= killed_at for who, _, _, at in record if who == leader.name)
        assert replicas[leader.name].task.done()
    finally:
        await finish(a.task)
        await finish(b.task)


async def test_lost_leadership_cancels_controllers_and_exits_non_zero(api: ApiClient) -> None:
    await configmap(api, "work")
    flaky = Gated(api)
    block = asyncio.Event()
    record: list[tuple[str, str, bool, float]] = []
    replica = Replica("solo", flaky, record, block=block, start=False)
    status = asyncio.create_task(run_manager(replica.manager))
    try:
        await eventually(lambda: record != [])  # leading, reconcile in flight
        assert replica.leading
        flaky.down = True  # cannot renew: leadership ends after renew_deadline
        assert await asyncio.wait_for(status, RENEW + 3.0) == 1
        # Cancelled at once (no drain: another replica may lead already).
        assert replica.cancelled == ["default/work"]
        assert not replica.leading
    finally:
        block.set()
        await finish(status)


async def test_signal_handlers_stop_then_force() -> None:
    stops: list[str] = []
    exits: list[int] = []
    remove = loop.install_signal_handlers(
        lambda: stops.append("stop"), signals=(signal.SIGUSR1,), force_exit=exits.append
    )
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        await eventually(lambda: stops == ["stop"])
        os.kill(os.getpid(), signal.SIGUSR1)
        await eventually(lambda: exits == [1])
        assert stops == ["stop"]
    finally:
        remove()


def test_loop_run_uses_uvloop_and_returns_the_result() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(main).startswith("uvloop")
    assert loop.run(main, use_uvloop=False).startswith("asyncio")


class RecordingPreSync:
    """A ``PreSyncWork`` that records when it was opened and run, relative to the servers."""

    def __init__(self, manager: Manager, *, fail_open: bool = False) -> None:
        self.manager = manager
        self.fail_open = fail_open
        self.servers_up_at_open: bool | None = None
        self.synced_seen = False
        self.ran = False

    async def open(self) -> None:
        self.servers_up_at_open = has_port(self.manager)
        if self.fail_open:
            raise ConnectionRefusedError("API server down")

    async def run(self, synced: asyncio.Event) -> None:
        self.ran = True
        await synced.wait()
        self.synced_seen = True


@pytest.mark.parametrize("leader_elect", [False, True])
async def test_presync_work_opens_before_servers_and_runs_until_synced(
    api: ApiClient, leader_elect: bool
) -> None:
    gated = Gated(api)
    gated.opened.clear()
    manager = Manager(
        gated,
        ManagerOptions(
            metrics_bind_address="0",
            health_probe_bind_address=LOCAL,
            leader_elect=leader_elect,
            lease_duration=LEASE,
            renew_deadline=RENEW,
            retry_period=RETRY,
            registry=CollectorRegistry(),
        ),
    )
    manager.informers.informer_for(CONFIGMAPS, namespace="default")
    works = [RecordingPreSync(manager), RecordingPreSync(manager, fail_open=True)]
    for work in works:
        manager.add_presync(work)
    run = asyncio.create_task(manager.run())
    try:
        await eventually(lambda: has_port(manager) and gated.lists > 0)
        if leader_elect:  # the Lease comes after the sync: no pre-sync work at all
            assert [w.servers_up_at_open for w in works] == [None, None]
            return
        good, failing = works
        assert good.servers_up_at_open is False and good.ran and not good.synced_seen
        assert failing.servers_up_at_open is False and not failing.ran  # skipped, not fatal
        gated.opened.set()
        await eventually(lambda: good.synced_seen)
    finally:
        await finish(run)
    with pytest.raises(RuntimeError, match="before run"):
        manager.add_presync(RecordingPreSync(manager))
