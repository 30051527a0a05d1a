"""Volcano Queues in the simulated scheduler: capability caps admission, a closed or missing queue
admits nothing, weights order the queues that take freed room, and each Queue's status."""

from __future__ import annotations

import asyncio
from typing import Any

from nodesim_helpers import Http, simulated
from test_gangs import (
    GPU,
    block,
    bound,
    group_status,
    member,
    wait_bound,
    wait_phase,
)

from kubetrain.cluster.nodesim import NodeSimOptions
from kubetrain.cluster.nodesim.podgroup import GroupSpec
from kubetrain.cluster.nodesim.queues import (
    QueueBook,
    QueueSpec,
    format_quantity,
    queue_status,
    refusal,
)

QUEUES = "/apis/scheduling.volcano.sh/v1beta1/queues"
GROUPS = "/apis/scheduling.volcano.sh/v1beta1/namespaces/default/podgroups"


def _group(min_member: int, **resources: Any) -> GroupSpec:
    spec: dict[str, Any] = {"minMember": min_member}
    if resources:
        spec["minResources"] = {k.replace("_", "/"): v for k, v in resources.items()}
    return GroupSpec.of({"metadata": {}, "spec": spec}, volcano=True)


# -- the pure rules ---------------------------------------------------------------------------


def test_group_spec_reads_the_queue_default_and_min_resources_as_written() -> None:
    assert _group(2).queue == "default"
    assert _group(2).min_resources is None
    assert _group(2, cpu="1500m").min_resources == {"cpu": 1500}
    named = GroupSpec.of({"metadata": {}, "spec": {"queue": "q"}}, volcano=True)
    assert named.queue == "q"
    assert GroupSpec.of({"metadata": {}, "spec": {"queue": "q"}}).queue == ""  # plugins


def test_refusal_missing_closed_and_capability_in_named_resources_only() -> None:
    gpu2 = {"metadata": {}, "spec": {"minMember": 2, "minResources": {GPU: "2", "cpu": "64"}}}
    group = GroupSpec.of(gpu2, volcano=True)
    missing = refusal("nowhere", None, group, {}, {})
    assert missing == (
        "QueueNotFound",
        'unable to find queue: queues.scheduling.volcano.sh "nowhere" not found',
    )
    closed = QueueSpec.of({"spec": {}, "status": {"state": "Closed"}})
    assert refusal("q", closed, group, {}, {}) == (
        "QueueClosed",
        "can only submit PodGroup to queue with state `Open`, queue `q` status is `Closed`",
    )
    capped = QueueSpec.of({"spec": {"capability": {GPU: "3", "memory": "0"}}})
    assert capped.capability == {GPU: 3000}  # memory 0: unlimited; cpu not named: not capped
    assert refusal("q", capped, group, {}, {}) is None
    assert refusal("q", capped, group, {GPU: 1000}, {}) is None  # 1 held + 2 = 3
    assert refusal("q", capped, group, {}, {GPU: 2000}) == (
        "NotEnoughResources",
        f"queue resource quota insufficient: insufficient {GPU}",
    )
    # without minResources Volcano admits whatever the capability
    assert refusal("q", capped, _group(5), {GPU: 3000}, {}) is None


def test_deserved_splits_by_weight_capped_by_capability_and_request() -> None:
    book = QueueBook()
    book.observe("light", {"metadata": {"name": "light"}, "spec": {"weight": 1}})
    book.observe("heavy", {"metadata": {"name": "heavy"}, "spec": {"weight": 3}})
    book.observe("capped", {"metadata": {"name": "capped"}, "spec": {"capability": {GPU: 1}}})
    total = {GPU: 8000}
    both = book.deserved(total, {"light": {GPU: 8000}, "heavy": {GPU: 8000}})
    assert both == {"light": {GPU: 2000.0}, "heavy": {GPU: 6000.0}}
    # light wants only 1: it deserves 1, the rest goes to heavy
    small = book.deserved(total, {"light": {GPU: 1000}, "heavy": {GPU: 8000}})
    assert small["light"][GPU] == 1000.0 and small["heavy"][GPU] == 7000.0
    # capability caps deserved; the rest is split among the others
    capped = book.deserved(total, {"capped": {GPU: 8000}, "light": {GPU: 8000}})
    assert capped["capped"][GPU] == 1000.0 and capped["light"][GPU] == 7000.0
    # share: allocated / deserved, the largest over resources
    book.charge("default/p", "heavy", {GPU: 3000})
    assert book.share("heavy", both["heavy"]) == 0.5
    assert book.share("light", both["light"]) == 0.0
    assert book.order_key("light", both) < book.order_key("heavy", both)
    book.uncharge("default/p")
    assert book.held("heavy") == {}


def test_queue_status_state_counts_and_allocated() -> None:
    spec = QueueSpec.of({"spec": {}})
    status = queue_status({}, spec, {"Inqueue": 1, "Pending": 2}, {GPU: 2000, "pods": 2000})
    assert status == {
        "state": "Open",
        "pending": 2,
        "inqueue": 1,
        "allocated": {"cpu": "0", "memory": "0", GPU: "2", "pods": "2"},
    }
    assert queue_status(status, spec, {"Inqueue": 1, "Pending": 2}, {GPU: 2000, "pods": 2000}) == (
        status
    )
    closed = QueueSpec.of({"spec": {}, "status": {"state": "Closed"}})
    assert queue_status({}, closed, {"Running": 1}, {})["state"] == "Closing"
    assert queue_status({}, closed, {}, {})["state"] == "Closed"
    assert format_quantity("cpu", 1500) == "1500m"
    assert format_quantity("cpu", 2000) == "2"
    assert format_quantity("memory", 128 * 2**30 * 1000) == "128Gi"
    assert format_quantity("memory", 1500 * 1000) == "1500"


# -- through the embedded cluster -------------------------------------------------------------


async def create_queue(http: Http, name: str, spec: dict[str, Any]) -> None:
    status, body = await http.call(
        "POST",
        QUEUES,
        {
            "apiVersion": "scheduling.volcano.sh/v1beta1",
            "kind": "Queue",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
    assert status == 201, body


async def patch(http: Http, path: str, body: dict[str, Any]) -> None:
    async with http.session.patch(
        http.base + path, json=body, headers={"Content-Type": "application/merge-patch+json"}
    ) as resp:
        assert resp.status == 200, await resp.text()


async def queue_group(http: Http, name: str, queue: str, gpus: int, *, pods: int = 0) -> None:
    """A Volcano group of ``gpus`` one-GPU members in ``queue``, and ``pods`` of its members."""
    spec = {"minMember": gpus, "minResources": {GPU: str(gpus)}, "queue": queue}
    status, body = await http.call(
        "POST",
        GROUPS,
        {
            "apiVersion": "scheduling.volcano.sh/v1beta1",
            "kind": "PodGroup",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
    assert status == 201, body
    for i in range(pods):
        await http.create(member(f"{name}-{i}", name, "volcano"))


async def queue_obj(http: Http, name: str) -> dict[str, Any]:
    status, body = await http.call("GET", f"{QUEUES}/{name}")
    assert status == 200, body
    return dict(body)


async def wait_queue(http: Http, name: str, want: dict[str, Any], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    last: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = (await queue_obj(http, name)).get("status") or {}
        if all(last.get(k) == v for k, v in want.items()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"queue {name} never showed {want}: {last}")


def options(nodes: int, gpus: int, run_seconds: float = 60) -> NodeSimOptions:
    return NodeSimOptions(nodes=nodes, gpus=gpus, default_run_seconds=run_seconds)


async def test_capability_admits_one_group_at_a_time_and_a_raise_admits_the_next() -> None:
    async with simulated(options(nodes=2, gpus=4)) as (_c, sim, http):
        await create_queue(http, "capped", {"weight": 1, "capability": {GPU: "2"}})
        await queue_group(http, "first", "capped", 2)
        await wait_phase(http, "volcano", "first", "Inqueue")
        await queue_group(http, "second", "capped", 2)
        await queue_group(http, "elsewhere", "default", 2)  # another queue: not capped
        await wait_phase(http, "volcano", "elsewhere", "Inqueue")
        status = await wait_phase(http, "volcano", "second", "Pending")
        assert status["conditions"][0]["reason"] == "NotEnoughResources"
        assert status["conditions"][0]["message"] == (
            f"queue resource quota insufficient: insufficient {GPU}"
        )
        await wait_queue(http, "capped", {"state": "Open", "inqueue": 1, "pending": 1})
        # the first's pods bind: still no room in the queue (allocated 2 of 2)
        for i in range(2):
            await http.create(member(f"first-{i}", "first", "volcano"))
        await wait_bound(http, ["first-0", "first-1"])
        await wait_phase(http, "volcano", "first", "Running")
        await wait_queue(http, "capped", {"running": 1, "pending": 1})
        allocated = (await queue_obj(http, "capped"))["status"]["allocated"]
        assert allocated[GPU] == "2" and allocated["pods"] == "2"
        await asyncio.sleep(0.3)
        assert (await group_status(http, "volcano", "second"))["phase"] == "Pending"
        # the queue's capability raised: the blocked group is admitted at once
        await patch(http, f"{QUEUES}/capped", {"spec": {"capability": {GPU: "4"}}})
        await wait_phase(http, "volcano", "second", "Inqueue")
        await wait_queue(http, "capped", {"running": 1, "inqueue": 1, "state": "Open"})
        assert "pending" not in (await queue_obj(http, "capped"))["status"]
        assert sim.scheduler.queue_status.writes <= 12  # on change only


async def test_capability_frees_when_the_queue_s_pods_finish() -> None:
    async with simulated(options(nodes=1, gpus=4, run_seconds=0.5)) as (_c, _sim, http):
        await create_queue(http, "capped", {"capability": {GPU: "2"}})
        await queue_group(http, "first", "capped", 2, pods=2)
        await queue_group(http, "second", "capped", 2, pods=2)
        await wait_phase(http, "volcano", "first", "Running")
        assert (await group_status(http, "volcano", "second"))["phase"] == "Pending"
        assert await bound(http, ["second-0", "second-1"]) == []
        await wait_phase(http, "volcano", "first", "Completed")
        await wait_bound(http, ["second-0", "second-1"])


async def test_a_group_of_a_missing_queue_waits_until_the_queue_is_made() -> None:
    async with simulated(options(nodes=1, gpus=2)) as (_c, _sim, http):
        await queue_group(http, "lost", "nowhere", 1, pods=1)
        status = await wait_phase(http, "volcano", "lost", "Pending")
        for _ in range(100):
            status = await group_status(http, "volcano", "lost")
            if status.get("conditions"):
                break
            await asyncio.sleep(0.02)
        condition = status["conditions"][0]
        assert condition["type"] == "Unschedulable"
        assert condition["reason"] == "QueueNotFound"
        assert '"nowhere" not found' in condition["message"]
        assert await bound(http, ["lost-0"]) == []
        await create_queue(http, "nowhere", {"weight": 1})
        await wait_bound(http, ["lost-0"])
        await wait_phase(http, "volcano", "lost", "Running")
        await wait_queue(http, "nowhere", {"state": "Open", "running": 1})


async def test_a_closed_queue_admits_nothing_new_until_reopened() -> None:
    async with simulated(options(nodes=1, gpus=2)) as (_c, _sim, http):
        await create_queue(http, "shut", {"weight": 1})
        await wait_queue(http, "shut", {"state": "Open"})
        await patch(http, f"{QUEUES}/shut/status", {"status": {"state": "Closed"}})
        await wait_queue(http, "shut", {"state": "Closed"})
        await queue_group(http, "late", "shut", 1, pods=1)
        await wait_phase(http, "volcano", "late", "Pending")
        for _ in range(100):
            conditions = (await group_status(http, "volcano", "late")).get("conditions") or []
            if conditions:
                break
            await asyncio.sleep(0.02)
        assert conditions[0]["reason"] == "QueueClosed"
        await wait_queue(http, "shut", {"state": "Closing", "pending": 1})  # it has a group
        assert await bound(http, ["late-0"]) == []
        await patch(http, f"{QUEUES}/shut/status", {"status": {"state": "Open"}})
        await wait_bound(http, ["late-0"])


async def test_freed_room_goes_to_queues_by_weight_not_by_age() -> None:
    async with simulated(options(nodes=1, gpus=4)) as (_c, _sim, http):
        await create_queue(http, "light", {"weight": 1})
        await create_queue(http, "heavy", {"weight": 3})
        await block(http, "blocker", 4)
        # the light queue's groups are older: by age alone they would take all 4 GPUs
        for queue in ("light", "heavy"):
            for i in range(4):
                await queue_group(http, f"{queue}{i}", queue, 1, pods=1)
                await wait_phase(http, "volcano", f"{queue}{i}", "Pending")
        await asyncio.sleep(0.3)
        code, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/blocker")
        assert code == 200
        names = {q: [f"{q}{i}-0" for i in range(4)] for q in ("light", "heavy")}
        deadline = asyncio.get_running_loop().time() + 20
        while len(await bound(http, names["light"] + names["heavy"])) < 4:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        # deserved: 1 GPU for light, 3 for heavy (weights 1:3 of 4)
        assert len(await bound(http, names["heavy"])) == 3
        assert len(await bound(http, names["light"])) == 1
