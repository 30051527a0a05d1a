"""Objects are served from the bytes they were committed as (``store.Record``): a GET, a LIST
(item bytes joined), a watch event (one line shared by every watcher) and a ``--data`` reload
all carry the same bytes, and none of them parses or re-serializes a stored object."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from apiserver_helpers import WIDGETS, Raw, create_crd, widget, widget_crd

from kubetrain.cluster.apiserver import resource_handlers, rest, store, streams, watch
from kubetrain.cluster.embedded import EmbeddedCluster

pytestmark = pytest.mark.embedded_only(
    reason="how the embedded server keeps and serves its objects (its store and modules); the "
    "answers themselves are checked on both servers by the other suites"
)

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


class _NoParse:
    """Stands in for orjson in the modules that serve stored objects: serializing a List's
    metadata and reading a record's labels (a small JSON map of their own) are fine, parsing
    a stored object is the failure."""

    dumps = staticmethod(orjson.dumps)
    JSONDecodeError = orjson.JSONDecodeError

    @staticmethod
    def loads(data: Any) -> Any:
        if b'"metadata"' in bytes(data):
            raise AssertionError("parsed a stored object to serve it")
        return orjson.loads(data)


async def _get_bytes(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def test_get_and_list_serve_the_stored_bytes_unparsed(
    cluster: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        for i in range(5):
            body = {"metadata": {"name": f"c{i}", "labels": {"i": str(i)}}, "data": {"k": "v"}}
            assert (await raw.post(CM, body))[0] == 201
        for module in (store, rest, resource_handlers, streams, watch):
            monkeypatch.setattr(module, "orjson", _NoParse)
        gets = [await _get_bytes(session, f"{cluster.url}{CM}/c{i}") for i in range(5)]
        listed = await _get_bytes(session, cluster.url + CM)
        paged = await _get_bytes(session, f"{cluster.url}{CM}?limit=2")
        selected = await _get_bytes(session, f"{cluster.url}{CM}?labelSelector=i%20in%20(1,3)")
    for i, data in enumerate(gets):
        rec = cluster.api.store.record(("", "configmaps"), "default", f"c{i}")
        assert rec is not None and data == rec[store.DATA]
    # a List is the stored bytes joined: every GET answer appears in it verbatim, in order
    assert listed.startswith(b'{"apiVersion":"v1","kind":"ConfigMapList","metadata":{')
    assert listed.endswith(b',"items":[' + b",".join(gets) + b"]}")
    body = orjson.loads(listed)
    assert [item["metadata"]["name"] for item in body["items"]] == [f"c{i}" for i in range(5)]
    page = orjson.loads(paged)
    assert len(page["items"]) == 2 and page["metadata"]["remainingItemCount"] == 3
    assert paged.endswith(b',"items":[' + gets[0] + b"," + gets[1] + b"]}")
    assert selected.endswith(b',"items":[' + gets[1] + b"," + gets[3] + b"]}")


async def test_every_watcher_gets_the_same_line_made_of_the_stored_bytes(
    cluster: EmbeddedCluster,
) -> None:
    async with aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        rv = str(cluster.api.store.rv)
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "5"}

        async def first_line() -> bytes:
            async with session.get(cluster.url + CM, params=params) as resp:
                async for line in resp.content:
                    if line.strip():
                        return bytes(line)
            raise AssertionError("the watch ended without an event")

        watches = [asyncio.create_task(first_line()) for _ in range(3)]
        for _ in range(500):
            if cluster.api.hub.watcher_count(("", "configmaps")) == 3:
                break
            await asyncio.sleep(0.01)
        assert (await raw.post(CM, {"metadata": {"name": "w"}}))[0] == 201
        lines = await asyncio.wait_for(asyncio.gather(*watches), 10)
        stored = await _get_bytes(session, f"{cluster.url}{CM}/w")
    assert lines == [b'{"type":"ADDED","object":' + stored + b"}\n"] * 3


async def test_a_dry_run_answers_what_would_be_stored_not_what_is(
    cluster: EmbeddedCluster,
) -> None:
    async with aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        _, created, _ = await raw.post(CM, {"metadata": {"name": "d"}, "data": {"k": "old"}})
        body = {**created, "data": {"k": "new"}}
        status, answered, _ = await raw.put(f"{CM}/d", body, params={"dryRun": "All"})
        assert status == 200 and answered["data"] == {"k": "new"}
        _, stored, _ = await raw.get(f"{CM}/d")
        assert stored["data"] == {"k": "old"}


async def test_objects_read_through_another_version_are_rewritten(
    cluster: EmbeddedCluster,
) -> None:
    async with aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        await create_crd(raw, widget_crd())
        assert (await raw.post(WIDGETS, widget("mv")))[0] == 201
        beta = "/apis/example.com/v1beta1/namespaces/default/widgets"
        _, listed, _ = await raw.get(beta)
        _, table, _ = await raw.get(
            beta, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
        )
    assert listed["apiVersion"] == "example.com/v1beta1"
    assert [i["apiVersion"] for i in listed["items"]] == ["example.com/v1beta1"]
    assert table["kind"] == "Table" and [r["cells"][0] for r in table["rows"]] == ["mv"]


def _pod(name: str, owner: dict[str, Any], **labels: str) -> dict[str, Any]:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    return {
        "metadata": {"name": name, "labels": labels, "ownerReferences": [ref]},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }


async def test_a_restart_serves_the_same_bytes_with_labels_and_owners(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    paths = [f"{PODS}/p{i}" for i in range(4)] + [f"{CM}/own"]
    async with EmbeddedCluster(data_dir=data) as first, aiohttp.ClientSession() as session:
        raw = Raw(first.url, session)
        _, owner, _ = await raw.post(CM, {"metadata": {"name": "own"}})
        for i in range(4):
            assert (await raw.post(PODS, _pod(f"p{i}", owner, even=str(i % 2 == 0))))[0] == 201
        before = {p: await _get_bytes(session, first.url + p) for p in paths}
    async with EmbeddedCluster(data_dir=data) as second, aiohttp.ClientSession() as session:
        raw = Raw(second.url, session)
        after = {p: await _get_bytes(session, second.url + p) for p in paths}
        assert after == before  # byte for byte: reloaded as committed
        _, selected, _ = await raw.get(PODS, params={"labelSelector": "even=True"})
        assert [i["metadata"]["name"] for i in selected["items"]] == ["p0", "p2"]
        # the owner index came back too: deleting the owner collects its pods
        assert (await raw.delete(f"{CM}/own"))[0] == 200
        await second.api.gc.wait_idle()
        _, left, _ = await raw.get(PODS)
        assert left["items"] == []


async def test_a_get_of_one_object_as_a_table_has_the_crd_columns(
    cluster: EmbeddedCluster,
) -> None:
    """``kubectl get KIND NAME`` asks for a Table of one object: the same columns as a list
    (kube answers both with the CRD's additionalPrinterColumns), not the object itself."""
    crd = widget_crd()
    for version in crd["spec"]["versions"]:
        version["additionalPrinterColumns"] = [{"jsonPath": ".spec.size", "name": "Size"}]
    table_accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    async with aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        await create_crd(raw, crd)
        body = widget("one")
        body["spec"] = {"size": 3}
        assert (await raw.post(WIDGETS, body))[0] == 201
        _, listed, _ = await raw.get(WIDGETS, headers=table_accept)
        _, single, _ = await raw.get(f"{WIDGETS}/one", headers=table_accept)
    assert single["kind"] == "Table"
    assert [c["name"] for c in single["columnDefinitions"]] == [
        c["name"] for c in listed["columnDefinitions"]
    ]
    assert "Size" in [c["name"] for c in single["columnDefinitions"]]
    assert single["rows"][0]["cells"] == listed["rows"][0]["cells"]
