"""Preemption in the simulated scheduler (``NodeSimOptions.preemption``): lower-priority victims,
lowest first and only when that makes the preemptor fit, whole groups for gangs, the victims'
``DisruptionTarget`` condition, the preemptor's nomination, ``preemptionPolicy: Never``, and
nothing at all when the option is off."""

from __future__ import annotations

import asyncio
from typing import Any

from nodesim_helpers import Http, pod, simulated
from test_gangs import GPU, bound, create_group, member, wait_bound, wait_phase

from kubetrain.cluster.nodesim import NodeSimOptions
from kubetrain.cluster.nodesim.preemption import Holders, Nomination, Nominations, Unit
from kubetrain.cluster.nodesim.preemption import choose_victims as choose

# -- the pure rules ---------------------------------------------------------------------------


def test_holders_by_priority_lowest_then_youngest_and_what_they_hold() -> None:
    holders = Holders()
    holders.add("a", 10, {GPU: 1000})
    holders.add("b", 5, {GPU: 2000})
    holders.add("c", 10, {GPU: 1000})
    holders.add("d", 100, {GPU: 1000})
    assert holders.below(100) == ["b", "c", "a"]
    assert holders.below(10) == ["b"]
    assert holders.reclaimable(11) == {GPU: 4000}
    assert holders.any_below(6) and not holders.any_below(5)
    holders.discard("b")
    assert holders.reclaimable(11) == {GPU: 2000}


def test_choose_victims_takes_the_lowest_until_it_fits_then_reprieves_the_highest() -> None:
    free = {"room": 0}
    sizes = {"low": 1, "mid": 1, "big": 2}
    units = [Unit("low", 1, ["low"]), Unit("mid", 2, ["mid"]), Unit("big", 3, ["big"])]

    def release(u: Unit) -> None:
        free["room"] += sizes[str(u.key)]

    def restore(u: Unit) -> None:
        free["room"] -= sizes[str(u.key)]

    victims = choose(units, release, restore, lambda: free["room"] >= 2)
    # low + mid make room for 2, and neither can be reprieved
    assert victims is not None and [v.key for v in victims] == ["mid", "low"]
    assert free["room"] == 2
    free["room"] = 0
    # wanting 3: low, mid, big all taken (4), then mid is reprieved? no: low+big = 3 fits
    victims = choose(units, release, restore, lambda: free["room"] >= 3)
    assert victims is not None and sorted(str(v.key) for v in victims) == ["big", "low"]
    assert free["room"] == 3
    free["room"] = 0
    assert choose(units, release, restore, lambda: free["room"] >= 5) is None
    assert free["room"] == 0  # all given back


def test_nominations_wait_for_their_last_victim() -> None:
    book = Nominations()
    book.add("ns/high", Nomination({"ns/high": "n0"}, {"ns/a", "ns/b"}))
    assert book.victim_gone("ns/a") is None
    assert book.victim_gone("ns/unrelated") is None
    assert book.victim_gone("ns/b") == "ns/high"
    assert book.drop("ns/high") is not None and len(book) == 0


# -- through the embedded cluster -------------------------------------------------------------


def options(nodes: int, gpus: int, *, preemption: bool = True) -> NodeSimOptions:
    return NodeSimOptions(nodes=nodes, gpus=gpus, default_run_seconds=60, preemption=preemption)


def prioritized(name: str, priority_class: str, gpus: int = 1, **kw: Any) -> dict[str, Any]:
    manifest = pod(name, requests={GPU: str(gpus)}, **kw)
    manifest["spec"]["priorityClassName"] = priority_class
    return manifest


async def classes(http: Http) -> None:
    await http.create_priority_classes({"low": 10, "mid": 100, "high": 1000, "top": 9000})
    status, body = await http.call(
        "POST",
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "polite"},
            "value": 5000,
            "preemptionPolicy": "Never",
        },
    )
    assert status == 201, body


async def running(http: Http, name: str) -> None:
    await http.wait_pod(name, lambda p: p["spec"].get("nodeName"))


def disruption(obj: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "DisruptionTarget":
            return dict(cond)
    return None


async def test_a_higher_priority_pod_evicts_the_lowest_only_and_is_nominated() -> None:
    async with simulated(options(nodes=1, gpus=2)) as (_c, sim, http):
        await classes(http)
        for name, pc in (("low", "low"), ("mid", "mid")):
            await http.create(prioritized(name, pc))
            await running(http, name)
        watch = asyncio.create_task(http.watch_pod("low", lambda t, _o: t == "DELETED"))
        await asyncio.sleep(0.1)
        await http.create(prioritized("high", "high"))
        events = await watch
        marked = [disruption(obj) for _, obj in events if disruption(obj)]
        assert marked, [t for t, _ in events]
        assert marked[0]["status"] == "True"
        assert marked[0]["reason"] == "PreemptionByScheduler"
        assert marked[0]["message"] == (
            "default-scheduler: preempting to accommodate a higher priority pod"
        )
        high = await http.wait_pod("high", lambda p: p["spec"].get("nodeName"))
        assert high["status"]["nominatedNodeName"] == high["spec"]["nodeName"]
        assert (await http.get_pod("mid")) is not None  # more important than needed: kept
        assert disruption(await http.get_pod("mid") or {}) is None
        status, events_list = await http.call("GET", "/api/v1/namespaces/default/events")
        assert status == 200
        assert any(
            e.get("reason") == "Preempted" and "default/high" in e.get("message", "")
            for e in events_list["items"]
        )
        assert sim.scheduler.evictor.evicted == 1


async def test_the_room_stays_with_the_preemptor_while_its_victim_goes() -> None:
    async with simulated(options(nodes=1, gpus=1)) as (_c, _sim, http):
        await classes(http)
        await http.create(prioritized("low", "low"))
        await running(http, "low")
        await http.create(prioritized("high", "high"))
        await http.create(prioritized("again", "low"))  # a replacement, as an operator makes
        await http.wait_gone("low")
        await running(http, "high")
        await asyncio.sleep(0.3)
        assert await bound(http, ["again"]) == []


async def test_equal_priority_and_preemption_policy_never_evict_nobody() -> None:
    async with simulated(options(nodes=1, gpus=1)) as (_c, sim, http):
        await classes(http)
        await http.create(prioritized("first", "high"))
        await running(http, "first")
        await http.create(prioritized("peer", "high"))
        await asyncio.sleep(0.5)
        assert await bound(http, ["peer"]) == []
        code, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/first")
        assert code == 200
        await running(http, "peer")
        await http.create(prioritized("polite", "polite"))  # higher, but Never preempts
        await asyncio.sleep(0.5)
        assert await bound(http, ["polite"]) == []
        assert (await http.get_pod("peer")) is not None
        explicit = prioritized("explicit", "top")  # its class would preempt, its spec says no
        explicit["spec"]["preemptionPolicy"] = "Never"
        await http.create(explicit)
        await asyncio.sleep(0.5)
        assert await bound(http, ["explicit"]) == []
        assert sim.scheduler.evictor.evicted == 0


async def test_nobody_is_evicted_when_that_would_not_make_room() -> None:
    async with simulated(options(nodes=2, gpus=2)) as (_c, sim, http):
        await classes(http)
        for i in range(2):
            await http.create(prioritized(f"low-{i}", "low", gpus=2))
            await running(http, f"low-{i}")
        await http.create(prioritized("huge", "high", gpus=3))  # no node has 3
        await asyncio.sleep(0.5)
        assert sim.scheduler.evictor.evicted == 0
        assert len(await bound(http, ["low-0", "low-1"])) == 2


async def test_without_the_option_nothing_is_preempted() -> None:
    async with simulated(options(nodes=1, gpus=1, preemption=False)) as (_c, sim, http):
        await classes(http)
        await http.create(prioritized("low", "low"))
        await running(http, "low")
        await http.create(prioritized("high", "high"))
        await asyncio.sleep(0.5)
        assert await bound(http, ["high"]) == []
        assert disruption(await http.get_pod("low") or {}) is None
        assert sim.scheduler.evictor.evicted == 0


async def test_a_gang_evicts_a_whole_lower_priority_gang() -> None:
    async with simulated(options(nodes=2, gpus=2)) as (_c, sim, http):
        await classes(http)
        # the low gang: 3 GPUs of 4; a low single pod holds the 4th
        await create_group(http, "volcano", "lowg", 3, priority_class="low")
        for i in range(3):
            manifest = member(f"lowg-{i}", "lowg", "volcano")
            manifest["spec"]["priorityClassName"] = "low"
            await http.create(manifest)
        await wait_bound(http, [f"lowg-{i}" for i in range(3)])
        await http.create(prioritized("lone", "mid"))
        await running(http, "lone")
        # the high gang wants 2: the lowest first is the low gang, taken whole (never part of
        # it), and that is enough: "lone" (mid) stays
        await create_group(http, "volcano", "highg", 2, priority_class="high")
        for i in range(2):
            manifest = member(f"highg-{i}", "highg", "volcano")
            manifest["spec"]["priorityClassName"] = "high"
            await http.create(manifest)
        await wait_bound(http, ["highg-0", "highg-1"])
        await wait_phase(http, "volcano", "highg", "Running")
        for i in range(3):
            await http.wait_gone(f"lowg-{i}")
        assert (await http.get_pod("lone")) is not None
        assert sim.scheduler.evictor.evicted == 3
