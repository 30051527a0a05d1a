"""SQLite persistence (``EmbeddedCluster(data_dir=...)``): restart keeps objects, uids, RVs;
a write is answered only once committed; resourceVersions never go backwards, even after a kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from apiserver_helpers import Raw, widget, widget_crd

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.persistence import DB_FILE, PersistenceError, SqliteBackend
from kubetrain.cluster.apiserver.store import Change
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


def _meta(data: str) -> dict[str, int]:
    conn = sqlite3.connect(os.path.join(data, DB_FILE))
    try:
        return dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()


def test_a_restart_after_a_crash_continues_from_the_committed_limit(tmp_path: Path) -> None:
    data = str(tmp_path)
    SqliteBackend(data).close()
    # what a crash leaves: the last transaction's rv and rv limit, no clean stop
    conn = sqlite3.connect(os.path.join(data, DB_FILE))
    with conn:
        conn.execute("UPDATE meta SET value = 10 WHERE key = 'rv'")
        conn.execute("INSERT INTO meta (key, value) VALUES ('rv_limit', 1010)")
    conn.close()
    backend = SqliteBackend(data, rv_gap=50)
    try:
        assert backend.load()[0] == 1010  # above every rv the crashed run may have handed out
        assert (backend.durable_rv, backend.rv_limit) == (1010, 1060)
        assert _meta(data)["rv_limit"] == 1060  # committed before anything is served
    finally:
        backend.close()
    # a clean stop keeps the exact counter: the next start continues from it
    assert "rv_limit" not in _meta(data) and _meta(data)["rv"] == 1010
    backend = SqliteBackend(data)
    try:
        assert backend.load()[0] == 1010
    finally:
        backend.close()


class HeldBackend(SqliteBackend):
    """Commits only while ``gate`` is set; ``fail`` makes the next transaction fail."""

    def __init__(self, data_dir: str, **kw: Any) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.delay = 0.0
        super().__init__(data_dir, **kw)

    def _write(self, batches: list[Sequence[Change]]) -> int:
        self.gate.wait()
        time.sleep(self.delay)
        if self.fail:
            raise sqlite3.OperationalError("database or disk is full")
        return super()._write(batches)


def _stored_names(data: str) -> set[str]:
    conn = sqlite3.connect(os.path.join(data, DB_FILE))
    try:
        rows = conn.execute("SELECT name FROM objects WHERE plural = 'configmaps'").fetchall()
    finally:
        conn.close()
    return {name for (name,) in rows}


async def _on_disk(backend: SqliteBackend) -> None:
    assert await asyncio.to_thread(backend.wait_durable, 10)


WRITES: dict[str, tuple[str, str, Any]] = {
    "create": ("POST", CM, {"metadata": {"name": "new"}}),
    "update": ("PUT", f"{CM}/a", {"metadata": {"name": "a"}, "data": {"v": "2"}}),
    "patch": ("PATCH", f"{CM}/a", {"data": {"v": "3"}}),
    "delete": ("DELETE", f"{CM}/a", None),
    "deletecollection": ("DELETE", CM, None),
    "status": ("PATCH", f"{PODS}/p/status", {"status": {"phase": "Running"}}),
}


@pytest.mark.parametrize("verb", list(WRITES))
async def test_a_write_is_answered_only_once_committed(tmp_path: Path, verb: str) -> None:
    backend = HeldBackend(str(tmp_path))
    options = ApiServerOptions(backend=backend)
    try:
        async with (
            EmbeddedCluster(options=options) as cluster,
            aiohttp.ClientSession() as session,
        ):
            raw = Raw(cluster.url, session)
            assert (await raw.post(CM, {"metadata": {"name": "a"}, "data": {"v": "1"}}))[0] == 201
            assert (await raw.post(PODS, pod("p")))[0] == 201
            await _on_disk(backend)
            rv_before = cluster.api.store.rv
            backend.gate.clear()
            method, path, body = WRITES[verb]
            content_type = "application/merge-patch+json" if method == "PATCH" else None
            kw = {"content_type": content_type} if content_type else {}
            write = asyncio.create_task(raw.call(method, path, body, **kw))
            for _ in range(200):  # committed in memory (watchers see it), not answered
                if cluster.api.store.rv > rv_before:
                    break
                await asyncio.sleep(0.01)
            assert cluster.api.store.rv > rv_before
            await asyncio.sleep(0.3)
            assert not write.done()
            # reads are not held
            assert (await asyncio.wait_for(raw.get("/api/v1/namespaces"), 5))[0] == 200
            backend.gate.set()
            status, answer, _ = await asyncio.wait_for(write, 10)
            assert status in (200, 201), answer
            assert backend.durable_rv >= cluster.api.store.rv
            names = _stored_names(str(tmp_path))
            if verb == "create":
                assert "new" in names
            elif verb in ("delete", "deletecollection"):
                assert "a" not in names
    finally:
        backend.gate.set()
        backend.close()


async def test_a_failed_backend_answers_500_and_refuses_writes(tmp_path: Path) -> None:
    backend = HeldBackend(str(tmp_path))
    options = ApiServerOptions(backend=backend)
    async with EmbeddedCluster(options=options) as cluster, aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        assert (await raw.post(CM, {"metadata": {"name": "kept"}}))[0] == 201
        backend.fail = True
        status, body, _ = await asyncio.wait_for(raw.post(CM, {"metadata": {"name": "a"}}), 10)
        assert status == 500, body
        assert body["kind"] == "Status" and body["reason"] == "InternalError"
        assert "persistence failed" in body["message"]
        assert "database or disk is full" in body["message"]
        # "a" was committed in memory before the failure was known: kept until a restart
        assert (await raw.get(f"{CM}/a"))[0] == 200
        # from now on writes are refused before they change anything
        status, body, _ = await asyncio.wait_for(raw.post(CM, {"metadata": {"name": "b"}}), 10)
        assert status == 500 and "writes are refused" in body["message"], body
        assert (await raw.get(f"{CM}/b"))[0] == 404
        status, body, _ = await asyncio.wait_for(raw.delete(f"{CM}/kept"), 10)
        assert status == 500, body
        assert (await raw.get(f"{CM}/kept"))[0] == 200  # reads keep working
    with pytest.raises(PersistenceError, match="writing failed: database or disk is full"):
        backend.close()
    # the data directory holds the last committed state
    async with EmbeddedCluster(data_dir=str(tmp_path)) as cluster:
        names = {k[1] for k, _ in cluster.api.store.iter_range(("", "configmaps"), "default")}
        assert names == {"kept"}


async def test_the_store_never_runs_further_ahead_than_the_rv_gap(tmp_path: Path) -> None:
    """With a slow writer and a tiny gap the store waits for the writer instead of handing out
    an rv at or above the committed limit (the bound a restart after a crash continues from)."""
    backend = HeldBackend(str(tmp_path), rv_gap=3)
    options = ApiServerOptions(backend=backend)
    over: list[tuple[int, int]] = []
    async with EmbeddedCluster(options=options) as cluster, aiohttp.ClientSession() as session:
        store = cluster.api.store

        def check(*_: Any) -> None:
            if store.rv >= backend.rv_limit:
                over.append((store.rv, backend.rv_limit))

        store.add_listener(check)
        backend.delay = 0.01
        raw = Raw(cluster.url, session)
        answers = await asyncio.gather(
            *(raw.post(CM, {"metadata": {"name": f"c{i}"}}) for i in range(40))
        )
        assert [a[0] for a in answers] == [201] * 40
        assert not over
        assert backend.durable_rv == store.rv
        backend.delay = 0
    backend.close()


async def _cluster_process(data: Path, kubeconfig: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubetrain.cli", "cluster", "--nodes", "0", "--insecure",
        "--data", str(data), "--kubeconfig", str(kubeconfig),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    url = line.decode().split(" at ")[-1].strip()
    assert url.startswith("http://"), line
    return proc, url


async def _watch_rvs(session: aiohttp.ClientSession, url: str, rv: str, seen: list[int]) -> None:
    """Every resourceVersion the watch delivers, until the stream breaks (the kill)."""
    params = {"watch": "true", "resourceVersion": rv}
    with contextlib.suppress(aiohttp.ClientError):
        async with session.get(url + CM, params=params) as resp:
            assert resp.status == 200
            async for line in resp.content:
                if line.strip():
                    event = orjson.loads(line)
                    seen.append(int(event["object"]["metadata"]["resourceVersion"]))


@pytest.mark.parametrize("mode", ["concurrent", "sequential"])
async def test_acknowledged_writes_survive_a_kill(tmp_path: Path, mode: str) -> None:
    """SIGKILL right after an answer (no pause): every acknowledged write is there after the
    restart, and the restarted server's resourceVersion is above every one a client saw (in
    answers and on a watch, which sees changes before they are durable)."""
    data = tmp_path / "data"
    proc, url = await _cluster_process(data, tmp_path / "kc")
    acked: dict[str, dict[str, Any] | None] = {}  # name -> last acknowledged state (None: gone)
    seen: list[int] = []  # every rv a client saw
    try:
        async with aiohttp.ClientSession() as session:
            raw = Raw(url, session)
            _, listed, _ = await raw.get(CM)
            watch = asyncio.create_task(
                _watch_rvs(session, url, listed["metadata"]["resourceVersion"], seen)
            )

            def answered(name: str, status: int, body: Any, expected: int) -> None:
                assert status == expected, body
                if body.get("kind") == "Status":  # a deletion's answer
                    acked[name] = None
                else:
                    seen.append(int(body["metadata"]["resourceVersion"]))
                    acked[name] = body

            if mode == "concurrent":
                # like the report: creates in flight, killed right after the 150th answer
                sem = asyncio.Semaphore(20)
                done = asyncio.Event()

                async def create(i: int) -> None:
                    async with sem:
                        if done.is_set():
                            return
                        status, body, _ = await raw.post(CM, {"metadata": {"name": f"c{i}"}})
                        if done.is_set():
                            return
                        answered(f"c{i}", status, body, 201)
                        if len(acked) == 150:
                            proc.kill()  # SIGKILL, in the same step as the answer
                            done.set()

                tasks = [asyncio.create_task(create(i)) for i in range(300)]
                await asyncio.wait_for(done.wait(), 60)
            else:
                for i in range(60):
                    status, body, _ = await raw.post(
                        CM, {"metadata": {"name": f"c{i}"}, "data": {"v": "0"}}
                    )
                    answered(f"c{i}", status, body, 201)
                    if i % 5 == 4:
                        status, body, _ = await raw.patch(f"{CM}/c{i - 1}", {"data": {"v": "1"}})
                        answered(f"c{i - 1}", status, body, 200)
                    if i % 7 == 6:
                        status, body, _ = await raw.delete(f"{CM}/c{i - 2}")
                        answered(f"c{i - 2}", status, body, 200)
                proc.kill()  # SIGKILL right after the last answer
            await proc.wait()
            await asyncio.wait_for(watch, 30)  # drains what the server sent, then breaks
            if mode == "concurrent":
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert len(acked) >= 50
    async with EmbeddedCluster(data_dir=str(data)) as cluster, aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        for name, state in acked.items():
            status, body, _ = await raw.get(f"{CM}/{name}")
            if state is None:
                assert status == 404, (name, body)
            else:
                assert status == 200, f"acknowledged {name} lost"
                assert body["metadata"]["uid"] == state["metadata"]["uid"]
                assert body.get("data") == state.get("data")
                assert body["metadata"]["resourceVersion"] == state["metadata"]["resourceVersion"]
        highest = max(seen)
        _, listed, _ = await raw.get(CM)
        assert int(listed["metadata"]["resourceVersion"]) > highest
        status, created, _ = await raw.post(CM, {"metadata": {"name": "after"}})
        assert status == 201 and int(created["metadata"]["resourceVersion"]) > highest
