"""Pod lifecycles driven by the simulated kubelets, observed with a watch over HTTP."""

from __future__ import annotations

from typing import Any

from nodesim_helpers import finished, phase, pod, simulated

from kubetrain.cluster.nodesim import NodeSimOptions

FAST = NodeSimOptions(nodes=2, default_run_seconds=0.2)


def container(p: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return dict(p["status"]["containerStatuses"][index])


async def test_pending_creating_running_succeeded_with_container_statuses() -> None:
    async with simulated(FAST) as (_c, _sim, http):
        await http.create(
            pod("ok", annotations={"start-delay-seconds": "0.2", "run-seconds": "0.3"})
        )
        events = await http.watch_pod("ok", lambda _t, p: finished(p))
        seen = []
        for _type, p in events:
            states = [next(iter(cs["state"])) for cs in p["status"].get("containerStatuses") or []]
            step = (phase(p), tuple(states))
            if not seen or seen[-1] != step:
                seen.append(step)
        assert seen[-3:] == [
            ("Pending", ("waiting",)),
            ("Running", ("running",)),
            ("Succeeded", ("terminated",)),
        ]
        creating = next(p for _t, p in events if p["status"].get("containerStatuses"))
        assert container(creating)["state"]["waiting"]["reason"] == "ContainerCreating"
        running = next(p for _t, p in events if phase(p) == "Running")
        assert running["status"]["podIP"].startswith("10.244.")
        assert running["status"]["hostIP"].startswith("172.18.")
        assert running["status"]["startTime"]
        conds = {c["type"]: c["status"] for c in running["status"]["conditions"]}
        assert conds == {
            "PodScheduled": "True",
            "Initialized": "True",
            "ContainersReady": "True",
            "Ready": "True",
        }
        cs = container(running)
        assert cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
        assert cs["image"] == "busybox:1.36" and "@sha256:" in cs["imageID"]
        assert cs["containerID"].startswith("containerd://")
        done = events[-1][1]
        term = container(done)["state"]["terminated"]
        assert term["exitCode"] == 0 and term["reason"] == "Completed"
        assert term["startedAt"] and term["finishedAt"] >= term["startedAt"]
        ready = next(c for c in done["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "PodCompleted"


async def test_nonzero_exit_fails_the_pod_under_never() -> None:
    async with simulated(FAST) as (_c, _sim, http):
        await http.create(pod("bad", annotations={"exit-code": "3"}))
        p = await http.wait_pod("bad", finished)
        assert phase(p) == "Failed"
        term = container(p)["state"]["terminated"]
        assert term["exitCode"] == 3 and term["reason"] == "Error"
        assert container(p)["restartCount"] == 0


async def test_in_place_restarts_under_onfailure() -> None:
    async with simulated(FAST) as (_c, _sim, http):
        manifest = pod(
            "flaky",
            restart_policy="OnFailure",
            annotations={"restarts": "2", "fail-after-seconds": "0.1", "exit-code": "0"},
        )
        await http.create(manifest)
        events = await http.watch_pod("flaky", lambda _t, p: finished(p))
        counts = [
            container(p)["restartCount"] for _t, p in events if p["status"].get("containerStatuses")
        ]
        assert counts == sorted(counts) and counts[-1] == 2 and 1 in counts
        done = events[-1][1]
        assert phase(done) == "Succeeded"
        cs = container(done)
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        assert cs["state"]["terminated"]["exitCode"] == 0


async def test_init_containers_run_first_and_per_container_exit_codes() -> None:
    async with simulated(FAST) as (_c, _sim, http):
        manifest = pod(
            "multi",
            annotations={"exit-code-side": "5"},
            init_containers=[{"name": "setup", "image": "busybox:1.36"}],
            containers=[
                {"name": "main", "image": "trainer:1"},
                {"name": "side", "image": "sidecar:1"},
            ],
        )
        await http.create(manifest)
        events = await http.watch_pod("multi", lambda _t, p: finished(p))
        first = events[0][1]
        done = events[-1][1]
        assert phase(done) == "Failed"
        init = done["status"]["initContainerStatuses"][0]
        assert init["name"] == "setup" and init["state"]["terminated"]["reason"] == "Completed"
        by_name = {
            cs["name"]: cs["state"]["terminated"]["exitCode"]
            for cs in done["status"]["containerStatuses"]
        }
        assert by_name == {"main": 0, "side": 5}
        assert phase(first) == "Pending"
