"""The burst's tenant probe (bench/scenarios/tenant_probe.py): its figures from samples, its
open-loop pace against a slow fake server, and the probe process driven over stdin/stdout
against the embedded cluster, whose request counter must agree with what the probe says it sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubetrain.bench.apimetrics import delta, scrape_request_counts
from kubetrain.bench.scenarios.tenant_probe import (
    PROBE_CONFIGMAP,
    PROBE_NAMESPACE,
    REQUESTS,
    PhaseSamples,
    ProbeOptions,
    Prober,
    TenantProbe,
    ensure_probe_objects,
    probe_figures,
    probe_section,
    without_probe,
)
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import CONFIGMAPS
from kubetrain.informers.transport import ApiStatusError


def samples(phase: str, values: list[float], **errors: int) -> PhaseSamples:
    return PhaseSamples(
        phase=phase,
        seconds=1.0,
        latencies={"GET configmaps": values[::2], "LIST configmaps": values[1::2]},
        errors=errors,
        rounds=len(values),
    )


def test_figures_pool_every_request_in_milliseconds() -> None:
    idle = samples("idle", [0.001] * 99 + [0.011])
    creating = samples("creating", [0.002] * 50)
    reconciling = samples("reconciling", [0.030] * 50)
    figures = probe_figures({"idle": idle, "creating": creating, "reconciling": reconciling})
    assert figures["probe_idle_p50_ms"] == pytest.approx(1.0)
    assert figures["probe_idle_p99_ms"] == pytest.approx(1.1)  # 99th of 100: interpolated
    # during: creating and reconciling pooled
    assert figures["probe_during_p50_ms"] == pytest.approx(16.0)
    assert figures["probe_during_p99_ms"] == pytest.approx(30.0)
    assert figures["probe_p99_ratio"] == pytest.approx(30.0 / 1.1)
    assert figures["probe_reconciling_p99_ms"] == pytest.approx(30.0)
    assert figures["probe_reconciling_p99_ratio"] == pytest.approx(30.0 / 1.1)
    section = probe_section({"idle": idle, "reconciling": reconciling})
    assert list(section) == ["idle", "reconciling"]
    assert section["reconciling"]["requests"]["LIST configmaps"] == {
        "count": 25,
        "p50_ms": pytest.approx(30.0),
        "p99_ms": pytest.approx(30.0),
    }


def test_figures_are_none_without_a_phase_or_a_sample() -> None:
    assert set(probe_figures({}).values()) == {None}
    figures = probe_figures({"idle": samples("idle", [0.001]), "creating": samples("creating", [])})
    assert figures["probe_idle_p99_ms"] == pytest.approx(1.0)
    assert figures["probe_during_p99_ms"] is None
    assert figures["probe_p99_ratio"] is None
    assert probe_section({}) == {}


def test_requests_answered_are_taken_out_of_the_api_servers_counts() -> None:
    creating = samples("creating", [0.001] * 2, **{"PATCH configmaps 429": 2})
    reconciling = samples("reconciling", [0.001] * 2, **{"GET configmaps error": 1})
    during = PhaseSamples.merged("during", [creating, reconciling])
    assert (during.seconds, during.rounds) == (2.0, 4)
    # an answer with a status was counted by the server; one that never came was not
    assert during.requests() == {"GET configmaps": 2, "LIST configmaps": 2, "PATCH configmaps": 2}
    counts = {"GET configmaps": 2, "LIST configmaps": 3, "PATCH configmaps": 2, "POST pods": 8}
    assert without_probe(counts, [creating, reconciling]) == {"LIST configmaps": 1, "POST pods": 8}
    assert without_probe(counts, []) == counts
    assert PhaseSamples.from_json(during.to_json()) == during


class SlowServer:
    """A stand-in for ``ApiClient``: every answer takes ``latency`` s; PATCH answers 429."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls: list[str] = []

    async def _answer(self, verb: str) -> dict[str, Any]:
        self.calls.append(verb)
        await asyncio.sleep(self.latency)
        return {}

    async def get(self, *args: Any) -> dict[str, Any]:
        return await self._answer("GET")

    async def list(self, *args: Any) -> dict[str, Any]:
        return await self._answer("LIST")

    async def patch(self, *args: Any) -> dict[str, Any]:
        await self._answer("PATCH")
        raise ApiStatusError(429, reason="TooManyRequests")


async def test_rounds_keep_their_pace_while_answers_are_slow() -> None:
    """Open loop: a round starts every interval although each takes 3 x 40 ms; beyond
    ``max_outstanding`` rounds in flight a due round is skipped and counted."""
    server = SlowServer(0.04)
    prober = Prober(
        server,  # type: ignore[arg-type]
        "ns",
        "cm",
        ProbeOptions(interval_seconds=0.01, max_outstanding=6),
    )
    prober.mark("creating")
    await asyncio.sleep(0.1)
    prober.mark("reconciling")  # rounds go on; those started from now on count here
    await asyncio.sleep(0.2)
    first, got = await prober.end()
    assert (first.phase, got.phase) == ("creating", "reconciling")
    assert first.seconds >= 0.1 and got.seconds >= 0.2
    assert first.rounds > 0 and first.errors == {"PATCH configmaps 429": first.rounds}
    # one due every 10 ms (a late tick starts one round, not those it missed: at most that many)
    assert 10 <= got.rounds + got.skipped <= got.seconds / 0.01 + 1
    assert got.skipped > 0  # 120 ms rounds every 10 ms: more than 6 would be in flight
    assert (
        got.rounds == len(got.latencies["GET configmaps"]) == len(got.latencies["LIST configmaps"])
    )
    assert got.errors == {"PATCH configmaps 429": got.rounds}
    assert min(got.latencies["GET configmaps"]) >= 0.04
    rounds = first.rounds + got.rounds
    assert server.calls.count("PATCH") == server.calls.count("LIST") == rounds
    await asyncio.sleep(0.05)
    assert len(server.calls) == 3 * rounds  # nothing starts after end()


async def test_a_phase_closed_before_its_first_tick_still_gets_a_round() -> None:
    """A burst of a few jobs can have every pod before the harness's last create returns: the
    reconciling phase then closes at once, and still reports a sample."""
    server = SlowServer(0.001)
    prober = Prober(
        server,  # type: ignore[arg-type]
        "ns",
        "cm",
        ProbeOptions(interval_seconds=10.0, max_outstanding=6),
    )
    prober.mark("creating")
    await asyncio.sleep(0)  # the first tick: one round for "creating"
    prober.mark("reconciling")
    first, got = await prober.end()  # before "reconciling" saw a tick
    assert first.rounds == 1 and got.rounds == 1
    assert len(got.latencies["GET configmaps"]) == 1


@pytest.mark.e2e
async def test_the_probe_process_against_the_embedded_cluster(tmp_path: Path) -> None:
    async with EmbeddedCluster() as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        options = ClientOptions(qps=0, adaptive=None, registry=new_registry(process_metrics=False))
        async with ApiClient(config, options) as admin, aiohttp.ClientSession() as session:
            await ensure_probe_objects(admin)
            await ensure_probe_objects(admin)  # idempotent: a second run on the same cluster
            probe = TenantProbe(
                kubeconfig=cluster.kubeconfig_path,
                log_path=tmp_path / "probe.log",
                options=ProbeOptions(interval_seconds=0.02),
            )
            await probe.start()
            try:
                before = await scrape_request_counts(session, cluster.url)
                await probe.mark("idle")
                await asyncio.sleep(0.5)
                idle = (await probe.end())["idle"]
                after = await scrape_request_counts(session, cluster.url)
                await probe.mark("creating")
                await asyncio.sleep(0.2)
                await probe.mark("reconciling")
                await asyncio.sleep(0.2)
                during = await probe.end()
            finally:
                await probe.stop()
            configmap = await admin.get(CONFIGMAPS, PROBE_NAMESPACE, PROBE_CONFIGMAP)
    assert list(during) == ["creating", "reconciling"]
    assert idle.errors == {} and idle.skipped == 0
    assert 5 <= idle.rounds <= idle.seconds / 0.02 + 1  # 0.5 s at one round every 20 ms
    assert set(idle.latencies) == set(REQUESTS)
    assert all(len(v) == idle.rounds for v in idle.latencies.values())
    # the server counted exactly what the probe says it sent (bench subtracts it)
    counted = {k: v for k, v in delta(before, after).items() if "configmaps" in k}
    assert counted == idle.requests()
    rounds = idle.rounds + during["creating"].rounds + during["reconciling"].rounds
    assert int(configmap["data"]["round"]) == rounds
    figures = probe_figures({"idle": idle, **during})
    assert all(value is not None for value in figures.values())
