"""LeaderElector against the embedded API server, with short durations (2 s / 1.5 s / 0.2 s).

Takeover bounds are behaviour, not speed: a killed leader's Lease must not be taken before it
expires, and must be taken within about one lease duration after; a released one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient
from kubetrain.engine.leaderelection import LeaderElectionConfig, LeaderElector
from kubetrain.informers.resource import LEASES

LEASE, RENEW, RETRY = 2.0, 1.5, 0.2


class Flaky:
    """A Transport wrapper that fails every request while ``down`` is set (a partition)."""

    def __init__(self, inner: ApiClient) -> None:
        self.inner = inner
        self.down = False

    async def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        if self.down:
            raise ConnectionRefusedError("partitioned")
        return await self.inner.request_json(method, path, **kw)

    def stream_lines(self, path: str, **kw: Any) -> Any:
        return self.inner.stream_lines(path, **kw)


class Candidate:
    def __init__(
        self,
        client: Any,
        identity: str,
        registry: CollectorRegistry,
        *,
        release: bool = True,
    ) -> None:
        self.log: list[str] = []
        self.elector = LeaderElector(
            client,
            LeaderElectionConfig(
                lease_name="kubetrain-leader",
                lease_namespace="default",
                identity=identity,
                lease_duration=LEASE,
                renew_deadline=RENEW,
                retry_period=RETRY,
                release_on_cancel=release,
            ),
            on_started_leading=self.started,
            on_stopped_leading=lambda: self.log.append("stopped"),
            on_new_leader=lambda who: self.log.append(f"leader={who}"),
            registry=registry,
        )
        self.task: asyncio.Task[None] = asyncio.create_task(self.elector.run())

    async def started(self) -> None:
        self.log.append("started")
        try:
            await asyncio.Event().wait()  # work while leading; cancelled when leadership ends
        except asyncio.CancelledError:
            self.log.append("work-cancelled")
            raise

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def gauge(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("leader_election_master_status", {"name": "kubetrain-leader"})


async def first_leader(*candidates: Candidate, timeout: float = 3.0) -> Candidate:
    waits = {asyncio.ensure_future(c.elector.wait_until_leading()): c for c in candidates}
    done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for fut in pending:
        fut.cancel()
    assert done, "nobody became leader"
    return waits[done.pop()]


async def lease(api: ApiClient) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = (await api.get(LEASES, "default", "kubetrain-leader"))["spec"]
    return spec


async def test_exactly_one_leads_and_a_killed_leader_is_replaced_after_expiry(
    api: ApiClient,
) -> None:
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    a = Candidate(api, "a", reg_a, release=False)
    b = Candidate(api, "b", reg_b, release=False)
    try:
        leader = await first_leader(a, b)
        other = b if leader is a else a
        await asyncio.sleep(4 * RETRY)  # several renew / retry rounds
        assert leader.elector.is_leader and not other.elector.is_leader
        assert {gauge(reg_a), gauge(reg_b)} == {1.0, 0.0}
        spec = await lease(api)
        assert spec["holderIdentity"] == leader.elector.config.identity
        assert spec["leaseDurationSeconds"] == 2 and spec["leaseTransitions"] == 0
        assert other.elector.leader == leader.elector.config.identity

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await leader.stop()  # a kill: no release
        assert (await lease(api))["holderIdentity"] == leader.elector.config.identity
        await asyncio.wait_for(other.elector.wait_until_leading(), LEASE + 3 * RETRY * 2.2)
        waited = loop.time() - killed_at
        assert waited >= LEASE - 2 * RETRY * 2.2, f"took over a live lease after {waited:.2f}s"
        spec = await lease(api)
        assert spec["holderIdentity"] == other.elector.config.identity
        assert spec["leaseTransitions"] == 1
        assert other.log[0] == f"leader={leader.elector.config.identity}"
        assert other.log[1:] in (
            [f"leader={other.elector.config.identity}", "started"],
            ["started", f"leader={other.elector.config.identity}"],
        )
    finally:
        await a.stop()
        await b.stop()


async def test_release_on_shutdown_hands_over_at_once(api: ApiClient) -> None:
    a = Candidate(api, "a", CollectorRegistry())
    b = Candidate(api, "b", CollectorRegistry())
    try:
        leader = await first_leader(a, b)
        other = b if leader is a else a
        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        await leader.stop()
        assert leader.log[-2:] == ["work-cancelled", "stopped"]
        # Released: the other needs only its next (jittered) retry, far below the lease duration.
        await asyncio.wait_for(other.elector.wait_until_leading(), LEASE - 0.5)
        assert loop.time() - stopped_at < LEASE - 0.5
        spec = await lease(api)
        assert spec["holderIdentity"] == other.elector.config.identity
    finally:
        await a.stop()
        await b.stop()


async def test_leader_that_cannot_renew_stops_leading(api: ApiClient) -> None:
    flaky = Flaky(api)
    registry = CollectorRegistry()
    a = Candidate(flaky, "a", registry, release=False)
    try:
        await asyncio.wait_for(a.elector.wait_until_leading(), 2.0)
        assert gauge(registry) == 1.0
        flaky.down = True
        await asyncio.wait_for(a.task, RENEW + 1.0)  # run() returns: leadership lost
        assert not a.elector.is_leader
        assert gauge(registry) == 0.0
        assert a.log[-2:] == ["work-cancelled", "stopped"]
        slow = registry.get_sample_value(
            "leader_election_slowpath_total", {"name": "kubetrain-leader"}
        )
        assert slow is not None and slow >= 1
    finally:
        await a.stop()


async def test_same_identity_restart_keeps_transitions(api: ApiClient) -> None:
    a = Candidate(api, "a", CollectorRegistry(), release=False)
    await asyncio.wait_for(a.elector.wait_until_leading(), 2.0)
    first = await lease(api)
    await a.stop()
    again = Candidate(api, "a", CollectorRegistry(), release=False)
    try:
        # The Lease names us: we take it back at once, without counting a transition.
        await asyncio.wait_for(again.elector.wait_until_leading(), 1.0)
        spec = await lease(api)
        assert spec["leaseTransitions"] == first["leaseTransitions"] == 0
    finally:
        await again.stop()


@pytest.mark.parametrize(
    ("durations", "match"),
    [
        ((2.0, 2.0, 0.2), "lease_duration"),
        ((15.0, 2.0, 2.0), "renew_deadline"),
        ((15.0, 10.0, 0.0), "retry_period"),
    ],
)
def test_config_validation(durations: tuple[float, float, float], match: str) -> None:
    lease_duration, renew_deadline, retry_period = durations
    with pytest.raises(ValueError, match=match):
        LeaderElectionConfig(
            lease_name="l",
            lease_namespace="ns",
            identity="me",
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
    with pytest.raises(ValueError, match="identity"):
        LeaderElectionConfig(lease_name="l", lease_namespace="ns", identity="")


def test_defaults_are_controller_runtimes() -> None:
    cfg = LeaderElectionConfig(lease_name="l", lease_namespace="ns", identity="me")
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (15.0, 10.0, 2.0)
