"""Gang scheduling through the embedded cluster over HTTP: Volcano and scheduler-plugins
PodGroups, all or nothing, their phases, priority, and pods outside any group left as they were."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from nodesim_helpers import Http, pod, simulated

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.nodesim import DirectLogSink, NodeSimOptions, NodeSimulator
from kubetrain.engine.config import load_kubeconfig

GROUPS = {
    "volcano": "/apis/scheduling.volcano.sh/v1beta1/namespaces/default/podgroups",
    "plugins": "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/default/podgroups",
}
GPU = "nvidia.com/gpu"


def options(nodes: int, gpus: int) -> NodeSimOptions:
    return NodeSimOptions(nodes=nodes, gpus=gpus, default_run_seconds=60)


def member(name: str, group: str, flavour: str, **kw: Any) -> dict[str, Any]:
    """A pod of ``group``, tied to it as the training operator ties them, asking for 1 GPU."""
    scheduler = "volcano" if flavour == "volcano" else "scheduler-plugins-scheduler"
    manifest = pod(name, requests={GPU: "1"}, scheduler_name=scheduler, **kw)
    if flavour == "volcano":
        manifest["metadata"]["annotations"]["scheduling.k8s.io/group-name"] = group
    else:
        manifest["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": group}
    return manifest


async def create_group(
    http: Http,
    flavour: str,
    name: str,
    min_member: int,
    priority_class: str = "",
    *,
    min_resources: bool = True,
) -> None:
    """A PodGroup; ``min_resources``: one GPU per member, as the operator computes it."""
    spec: dict[str, Any] = {"minMember": min_member}
    if min_resources:
        spec["minResources"] = {GPU: str(min_member)}
    if priority_class and flavour == "volcano":
        spec["priorityClassName"] = priority_class
    group = (
        "scheduling.volcano.sh/v1beta1" if flavour == "volcano" else "scheduling.x-k8s.io/v1alpha1"
    )
    status, body = await http.call(
        "POST",
        GROUPS[flavour],
        {"apiVersion": group, "kind": "PodGroup", "metadata": {"name": name}, "spec": spec},
    )
    assert status == 201, body


async def group_status(http: Http, flavour: str, name: str) -> dict[str, Any]:
    status, body = await http.call("GET", f"{GROUPS[flavour]}/{name}")
    assert status == 200, body
    return dict(body.get("status") or {})


async def wait_phase(
    http: Http, flavour: str, name: str, phase: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    last: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = await group_status(http, flavour, name)
        if last.get("phase") == phase:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"PodGroup {name} never reached {phase}: {last}")


async def bound(http: Http, names: list[str]) -> list[str]:
    out = []
    for name in names:
        p = await http.get_pod(name)
        if p is not None and p["spec"].get("nodeName"):
            out.append(name)
    return out


async def wait_bound(http: Http, names: list[str], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if len(await bound(http, names)) == len(names):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {await bound(http, names)} of {names} were bound")


async def block(http: Http, name: str, gpus: int) -> None:
    """A plain pod holding ``gpus`` GPUs until deleted."""
    await http.create(pod(name, requests={GPU: str(gpus)}))
    await http.wait_pod(name, lambda p: p["spec"].get("nodeName"))


async def test_volcano_group_waits_pending_unbound_until_room_frees_then_runs_all() -> None:
    async with simulated(options(nodes=3, gpus=1)) as (_c, _sim, http):
        await block(http, "blocker", 1)  # room for 2 of the 3
        await create_group(http, "volcano", "g", 3)
        await wait_phase(http, "volcano", "g", "Pending")
        names = [f"g-{i}" for i in range(3)]
        for name in names:
            await http.create(member(name, "g", "volcano"))
        await asyncio.sleep(0.5)
        assert await bound(http, names) == []  # not 2 of 3: none
        status = await group_status(http, "volcano", "g")
        assert status["phase"] == "Pending"
        assert status["conditions"][0]["type"] == "Unschedulable"
        assert status["conditions"][0]["reason"] == "NotEnoughResources"
        code, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/blocker")
        assert code == 200
        await wait_bound(http, names)
        status = await wait_phase(http, "volcano", "g", "Running")
        assert status["conditions"][0]["type"] == "Scheduled"
        for _ in range(200):
            if (await group_status(http, "volcano", "g")).get("running") == 3:
                break
            await asyncio.sleep(0.02)
        assert (await group_status(http, "volcano", "g")).get("running") == 3
        # written on change only: Pending, Running, then the running count as pods start
        assert _sim.scheduler.group_status.writes <= 6


async def test_volcano_group_goes_inqueue_before_its_pods_exist() -> None:
    async with simulated(options(nodes=2, gpus=1)) as (_c, _sim, http):
        await create_group(http, "volcano", "small", 2)
        await wait_phase(http, "volcano", "small", "Inqueue")  # admitted: the operator may create
        await create_group(http, "volcano", "second", 1)
        await asyncio.sleep(0.3)  # the room is reserved for "small", whose pods do not exist yet
        assert (await group_status(http, "volcano", "second"))["phase"] == "Pending"
        for i in range(2):
            await http.create(member(f"small-{i}", "small", "volcano"))
        await wait_bound(http, ["small-0", "small-1"])
        await wait_phase(http, "volcano", "small", "Running")


@pytest.mark.parametrize("flavour", ["volcano", "plugins"])
async def test_group_runs_once_min_member_is_lowered_by_a_patch(flavour: str) -> None:
    async with simulated(options(nodes=2, gpus=1)) as (_c, _sim, http):
        await create_group(http, flavour, "g", 3)
        await wait_phase(http, flavour, "g", "Pending")
        names = [f"g-{i}" for i in range(3)]
        for name in names:
            await http.create(member(name, "g", flavour))
        if flavour == "plugins":
            await wait_phase(http, flavour, "g", "Scheduling")  # minMember pods exist
        await asyncio.sleep(0.5)
        assert await bound(http, names) == []
        await patch_group(
            http, flavour, "g", {"spec": {"minMember": 2, "minResources": {GPU: "2"}}}
        )
        deadline = asyncio.get_running_loop().time() + 20
        while len(await bound(http, names)) < 2:
            assert asyncio.get_running_loop().time() < deadline, await bound(http, names)
            await asyncio.sleep(0.02)
        await wait_phase(http, flavour, "g", "Running")
        assert len(await bound(http, names)) == 2  # the third has no room


async def patch_group(http: Http, flavour: str, name: str, patch: dict[str, Any]) -> None:
    async with http.session.patch(
        http.base + f"{GROUPS[flavour]}/{name}",
        json=patch,
        headers={"Content-Type": "application/merge-patch+json"},
    ) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("flavour", ["volcano", "plugins"])
async def test_two_groups_competing_for_too_little_room_are_never_half_bound(flavour: str) -> None:
    async with simulated(options(nodes=2, gpus=2)) as (_c, _sim, http):  # 4 GPUs, 2 groups of 3
        for group in ("a", "b"):
            # no minResources: Volcano admits both (nothing to reserve), the pods compete
            await create_group(http, flavour, group, 3, min_resources=False)
            await wait_phase(http, flavour, group, "Inqueue" if flavour == "volcano" else "Pending")
        names = {g: [f"{g}-{i}" for i in range(3)] for g in ("a", "b")}
        for i in range(3):
            for g in ("a", "b"):
                await http.create(member(names[g][i], g, flavour))
        seen_full = set()
        for _ in range(40):  # watch a while: never 1 or 2 of a group
            counts = {g: len(await bound(http, names[g])) for g in names}
            assert set(counts.values()) <= {0, 3}, counts
            seen_full |= {g for g, n in counts.items() if n == 3}
            await asyncio.sleep(0.025)
        assert len(seen_full) == 1, seen_full
        winner = seen_full.pop()
        loser = "b" if winner == "a" else "a"
        await wait_phase(http, flavour, winner, "Running")
        loser_phase = (await group_status(http, flavour, loser))["phase"]
        assert loser_phase == ("Inqueue" if flavour == "volcano" else "Scheduling")
        assert await bound(http, names[loser]) == []


@pytest.mark.parametrize("flavour", ["volcano", "plugins"])
async def test_higher_priority_group_goes_first_when_room_frees(flavour: str) -> None:
    async with simulated(options(nodes=1, gpus=3)) as (_c, _sim, http):
        await http.create_priority_classes({"low": 10, "high": 1000})
        await block(http, "blocker", 3)
        names = {g: [f"{g}-{i}" for i in range(3)] for g in ("low", "high")}
        for g in ("low", "high"):  # the low one is older
            await create_group(http, flavour, g, 3, priority_class=g)
            await wait_phase(http, flavour, g, "Pending")
            for name in names[g]:
                manifest = member(name, g, flavour)
                manifest["spec"]["priorityClassName"] = g
                await http.create(manifest)
        await asyncio.sleep(0.3)
        assert await bound(http, names["low"] + names["high"]) == []
        code, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/blocker")
        assert code == 200
        await wait_bound(http, names["high"])
        await wait_phase(http, flavour, "high", "Running")
        assert await bound(http, names["low"]) == []


async def test_pods_outside_groups_are_scheduled_alone_while_a_gang_waits() -> None:
    async with simulated(options(nodes=2, gpus=1)) as (_c, _sim, http):
        await create_group(http, "volcano", "big", 3)
        for i in range(3):
            await http.create(member(f"big-{i}", "big", "volcano"))
        await wait_phase(http, "volcano", "big", "Pending")
        plain = pod("plain", requests={GPU: "1"})
        lone = pod("lone-volcano", requests={GPU: "1"}, scheduler_name="volcano")
        labelled = pod("labelled", requests={"cpu": "1"})  # default scheduler ignores the label
        labelled["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": "big"}
        for manifest in (plain, lone, labelled):
            await http.create(manifest)
        for name in ("plain", "lone-volcano", "labelled"):
            await http.wait_pod(name, lambda p: p["spec"].get("nodeName"))
        assert await bound(http, [f"big-{i}" for i in range(3)]) == []


async def test_without_podgroup_crds_group_members_are_scheduled_alone() -> None:
    async with EmbeddedCluster(gang_crds=False) as cluster:
        sim = NodeSimulator.for_config(
            await load_kubeconfig(cluster.kubeconfig_path),
            options(nodes=1, gpus=1),
            log_sink=DirectLogSink(cluster.api.pod_logs.append),
        )
        await sim.start()
        try:
            assert sim.scheduler.gang_flavours == frozenset()
            async with aiohttp.ClientSession() as session:
                http = Http(cluster.url, session)
                await http.create(member("m", "nowhere", "volcano"))
                await http.wait_pod("m", lambda p: p["spec"].get("nodeName"))
        finally:
            await sim.stop()
