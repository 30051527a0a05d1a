"""The store and watch hub without HTTP: ordering, paging, owner index, copy on write, history."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrain.cluster.apiserver import errors
from kubetrain.cluster.apiserver.builtins import builtin_resources
from kubetrain.cluster.apiserver.resources import ResourceInfo
from kubetrain.cluster.apiserver.selectors import parse_label_selector
from kubetrain.cluster.apiserver.store import ObjectStore
from kubetrain.cluster.apiserver.watch import WatchHub


def _info(plural: str) -> ResourceInfo:
    return next(i for i in builtin_resources() if i.plural == plural and i.group == "")


def _cm(ns: str, name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
    }


@pytest.fixture
def store() -> ObjectStore:
    return ObjectStore(hub=WatchHub(history_size=4))


def test_namespaces_are_contiguous_ranges(store: ObjectStore) -> None:
    info = _info("configmaps")
    for ns in ("b", "a", "c"):
        for name in ("y", "x"):
            store.create(info, _cm(ns, name))
    items, last, _ = store.list(info.storage_key, "b")
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items] == [
        ("b", "x"),
        ("b", "y"),
    ]
    assert last is None
    assert store.count(info.storage_key, "b") == 2 and store.count(info.storage_key) == 6
    page, last, remaining = store.list(info.storage_key, None, limit=4)
    assert [o["metadata"]["namespace"] for o in page] == ["a", "a", "b", "b"]
    assert last == ("b", "y") and remaining == 2
    rest, last, _ = store.list(info.storage_key, None, limit=4, after=last)
    assert [o["metadata"]["namespace"] for o in rest] == ["c", "c"] and last is None


def test_paging_with_selector_continues_after_last_match(store: ObjectStore) -> None:
    info = _info("configmaps")
    for i in range(6):
        store.create(info, _cm("ns", f"o{i}", labels={"keep": str(i % 3 == 0)}))
    sel = parse_label_selector("keep=True")
    page, last, remaining = store.list(info.storage_key, "ns", label_selector=sel, limit=1)
    assert [o["metadata"]["name"] for o in page] == ["o0"] and remaining is None
    page, last, _ = store.list(info.storage_key, "ns", label_selector=sel, limit=1, after=last)
    assert [o["metadata"]["name"] for o in page] == ["o3"] and last is None


def test_stored_objects_are_never_mutated(store: ObjectStore) -> None:
    info = _info("configmaps")
    first = store.create(info, _cm("ns", "x"))
    snapshot = {**first, "metadata": dict(first["metadata"])}
    second = store.update(info, _cm("ns", "x", labels={"a": "b"}))
    gone = store.delete(info, "ns", "x")
    assert first == snapshot
    assert second is not first and gone is not second
    assert int(gone["metadata"]["resourceVersion"]) > int(second["metadata"]["resourceVersion"])
    assert second["metadata"]["resourceVersion"] == str(
        int(first["metadata"]["resourceVersion"]) + 1
    )


def test_conflicts_and_missing(store: ObjectStore) -> None:
    info = _info("configmaps")
    store.create(info, _cm("ns", "x"))
    with pytest.raises(errors.ApiError) as exc:
        store.create(info, _cm("ns", "x"))
    assert exc.value.code == 409
    with pytest.raises(errors.ApiError) as exc:
        store.update(info, _cm("ns", "x"), expected_rv="999")
    assert exc.value.reason == "Conflict"
    with pytest.raises(errors.ApiError) as exc:
        store.delete(info, "ns", "nope")
    assert exc.value.code == 404


def test_owner_index_follows_owner_references(store: ObjectStore) -> None:
    info = _info("pods")
    ref = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "owner-1"}]
    store.create(info, {"metadata": {"name": "p1", "namespace": "ns", "ownerReferences": ref}})
    store.create(info, {"metadata": {"name": "p2", "namespace": "ns", "ownerReferences": ref}})
    assert sorted(store.dependents("owner-1")) == [
        (("", "pods"), ("ns", "p1")),
        (("", "pods"), ("ns", "p2")),
    ]
    store.update(info, {"metadata": {"name": "p1", "namespace": "ns"}})
    store.delete(info, "ns", "p2")
    assert store.dependents("owner-1") == []


def test_history_window_and_compaction(store: ObjectStore) -> None:
    info = _info("configmaps")
    hub = store.hub
    rvs = [
        int(store.create(info, _cm("ns", f"c{i}"))["metadata"]["resourceVersion"]) for i in range(6)
    ]
    key = info.storage_key
    assert hub.is_expired(key, rvs[0])  # only the last 4 events are retained
    assert not hub.is_expired(key, rvs[2])
    assert [e.rv for e in hub.since(key, rvs[2])] == rvs[3:]
    hub.compact(rv=rvs[4])
    assert hub.is_expired(key, rvs[3])
    assert [e.rv for e in hub.since(key, rvs[4])] == rvs[5:]
