"""SQLite persistence (``EmbeddedCluster(data_dir=...)``): restart keeps objects, uids, RVs."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from apiserver_helpers import Raw, widget, widget_crd

from kubetrain.cluster.apiserver.persistence import DB_FILE, PersistenceError, SqliteBackend
from kubetrain.cluster.embedded import EmbeddedCluster

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


async def _snapshot(raw: Raw) -> dict[str, Any]:
    """Every object the tests create, by path, as served."""
    out: dict[str, Any] = {}
    for path in (CM, PODS, WIDGETS, CRDS, "/api/v1/namespaces", "/api/v1/services"):
        status, body, _ = await raw.get(path)
        assert status == 200, body
        for item in body["items"]:
            out[f"{path}/{item['metadata']['name']}"] = item
    return out


async def _populate(raw: Raw) -> None:
    assert (await raw.post(CRDS, widget_crd()))[0] == 201
    for i in range(3):
        assert (await raw.post(WIDGETS, widget(f"w{i}")))[0] == 201
        assert (await raw.post(PODS, pod(f"p{i}")))[0] == 201
        assert (await raw.post(CM, {"metadata": {"name": f"c{i}"}, "data": {"i": str(i)}}))[
            0
        ] == 201
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    assert (await raw.post("/api/v1/namespaces/default/services", svc))[0] == 201
    assert (await raw.patch(WIDGETS + "/w1/status", {"status": {"replicas": 2}}))[0] == 200
    assert (await raw.patch(CM + "/c1", {"data": {"i": "changed"}}))[0] == 200
    assert (await raw.delete(CM + "/c2"))[0] == 200


async def test_restart_keeps_objects_uids_and_resource_versions(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    async with EmbeddedCluster(data_dir=data) as first, aiohttp.ClientSession() as session:
        raw = Raw(first.url, session)
        await _populate(raw)
        before = await _snapshot(raw)
        rv_before = first.api.store.rv
    async with EmbeddedCluster(data_dir=data) as second, aiohttp.ClientSession() as session:
        raw = Raw(second.url, session)
        assert second.api.store.rv == rv_before  # nothing re-created, counter restored
        after = await _snapshot(raw)
        assert after == before
        assert after[f"{CM}/c1"]["data"] == {"i": "changed"}
        assert f"{CM}/c2" not in after
        assert after[f"{WIDGETS}/w1"]["status"] == {"replicas": 2}
        # the CRD is served again: its schema still validates (and defaults) new objects
        status, body, _ = await raw.post(WIDGETS, widget("bad", size=0))
        assert status == 422, body
        status, created, _ = await raw.post(WIDGETS, widget("w9"))
        assert status == 201 and created["spec"]["color"] == "red"
        assert int(created["metadata"]["resourceVersion"]) > rv_before
        # the service's clusterIP stays reserved: a new service gets another one
        svc2 = {"metadata": {"name": "s2"}, "spec": {"ports": [{"port": 80}]}}
        _, s2, _ = await raw.post("/api/v1/namespaces/default/services", svc2)
        assert s2["spec"]["clusterIP"] != after["/api/v1/services/s"]["spec"]["clusterIP"]


async def test_rv_never_goes_back_even_when_deletes_came_last(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    async with EmbeddedCluster(data_dir=data) as first, aiohttp.ClientSession() as session:
        raw = Raw(first.url, session)
        for i in range(5):
            await raw.post(CM, {"metadata": {"name": f"c{i}"}})
        for i in range(5):
            await raw.delete(f"{CM}/c{i}")
        rv_before = first.api.store.rv
    async with EmbeddedCluster(data_dir=data) as second, aiohttp.ClientSession() as session:
        assert second.api.store.rv == rv_before
        _, created, _ = await Raw(second.url, session).post(CM, {"metadata": {"name": "x"}})
        assert int(created["metadata"]["resourceVersion"]) == rv_before + 1


async def test_watch_from_before_the_restart_gets_410(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    async with EmbeddedCluster(data_dir=data) as first, aiohttp.ClientSession() as session:
        raw = Raw(first.url, session)
        _, old, _ = await raw.post(CM, {"metadata": {"name": "a"}})
        await raw.post(CM, {"metadata": {"name": "b"}})
    async with EmbeddedCluster(data_dir=data) as second, aiohttp.ClientSession() as session:
        raw = Raw(second.url, session)
        old_rv = old["metadata"]["resourceVersion"]
        events = await raw.watch_lines(CM, {"watch": "true", "resourceVersion": old_rv}, 5)
        assert len(events) == 1 and events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410
        # from the restored RV on, a watch works and sees new events
        now = str(second.api.store.rv)
        watch = asyncio.create_task(
            raw.watch_lines(CM, {"watch": "true", "resourceVersion": now}, 1)
        )
        for _ in range(500):
            if second.api.hub.watcher_count(("", "configmaps")):
                break
            await asyncio.sleep(0.01)
        await raw.post(CM, {"metadata": {"name": "c"}})
        events = await asyncio.wait_for(watch, 5)
        assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "c"


async def test_writes_reach_disk_while_running(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    async with EmbeddedCluster(data_dir=data) as cluster, aiohttp.ClientSession() as session:
        raw = Raw(cluster.api.url, session)
        for i in range(20):
            await raw.post(CM, {"metadata": {"name": f"c{i}"}})
            await raw.patch(f"{CM}/c{i}", {"data": {"v": str(i)}})
        cluster.api.store.flush()
        backend = cluster.api.store.backend
        assert isinstance(backend, SqliteBackend)
        assert await asyncio.to_thread(backend.wait_durable, 5)
        conn = sqlite3.connect(os.path.join(data, DB_FILE))
        try:
            rows = conn.execute(
                "SELECT name, data FROM objects WHERE grp = '' AND plural = 'configmaps'"
            ).fetchall()
            rv = conn.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()[0]
        finally:
            conn.close()
        stored = {name: orjson.loads(blob) for name, blob in rows}
        assert len(stored) == 20
        assert stored["c7"]["data"] == {"v": "7"}
        assert (
            stored["c7"]["metadata"]["resourceVersion"]
            == (cluster.api.store.get(("", "configmaps"), "default", "c7") or {})["metadata"][
                "resourceVersion"
            ]
        )
        assert rv == cluster.api.store.rv


async def test_a_second_server_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    async with EmbeddedCluster(data_dir=data):
        with pytest.raises(PersistenceError, match="in use by another kubetrain cluster"):
            await EmbeddedCluster(data_dir=data).start()
    # released on stop
    async with EmbeddedCluster(data_dir=data):
        pass


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    SqliteBackend(str(tmp_path)).close()
    conn = sqlite3.connect(tmp_path / DB_FILE)
    with conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(PersistenceError, match="schema version 99"):
        SqliteBackend(str(tmp_path))


async def test_acknowledged_writes_survive_a_kill(tmp_path: Path) -> None:
    """SIGKILL (no clean stop) shortly after the writes: everything acknowledged is there."""
    data = tmp_path / "data"
    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubetrain.cli", "cluster", "--nodes", "0",
        "--data", str(data), "--kubeconfig", str(kubeconfig),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        url = line.decode().split(" at ")[-1].strip()
        assert url.startswith("http://"), line
        async with aiohttp.ClientSession() as session:
            raw = Raw(url, session)
            for i in range(50):
                assert (await raw.post(CM, {"metadata": {"name": f"c{i}"}}))[0] == 201
            assert (await raw.delete(f"{CM}/c0"))[0] == 200
            _, last, _ = await raw.post(CM, {"metadata": {"name": "z"}})
        await asyncio.sleep(0.5)  # the documented bound is "a few ms"; leave ample margin
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    async with EmbeddedCluster(data_dir=str(data)) as cluster:
        names = {k[1] for k, _ in cluster.api.store.iter_range(("", "configmaps"), "default")}
        assert names == {f"c{i}" for i in range(1, 50)} | {"z"}
        assert cluster.api.store.rv == int(last["metadata"]["resourceVersion"])
