"""The store and watch hub without HTTP: ordering, paging, owner index, copy on write, history,
and objects kept as their committed bytes (records, shared event lines, no parse to list)."""

from __future__ import annotations

import gc
from typing import Any

import orjson
import pytest

from kubetrain.base.jsoncopy import json_copy
from kubetrain.cluster.apiserver import errors
from kubetrain.cluster.apiserver import store as store_module
from kubetrain.cluster.apiserver import watch as watch_module
from kubetrain.cluster.apiserver.builtins import builtin_resources
from kubetrain.cluster.apiserver.resources import ResourceInfo
from kubetrain.cluster.apiserver.selectors import parse_field_selector, parse_label_selector
from kubetrain.cluster.apiserver.store import API_VERSION, DATA, LABELS, OWNERS, RV, ObjectStore
from kubetrain.cluster.apiserver.watch import (
    ADDED,
    DELETED,
    MODIFIED,
    Watcher,
    WatchHub,
    event_line,
)


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


# -- stored as bytes ---------------------------------------------------------------------------


class _NoParse:
    """Stands in for orjson in a module that must not parse: serializing is fine."""

    dumps = staticmethod(orjson.dumps)
    JSONDecodeError = orjson.JSONDecodeError

    @staticmethod
    def loads(data: Any) -> Any:
        raise AssertionError("parsed a stored object")


def test_a_record_is_the_committed_object_serialized_once(store: ObjectStore) -> None:
    info = _info("pods")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1"}
    meta = {"labels": {"app": "a", "tier": "t"}, "ownerReferences": [ref, dict(ref)]}
    created = store.create(
        info,
        {
            **_cm("ns", "p"),
            "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "ns", **meta},
        },
    )
    rec = store.record(info.storage_key, "ns", "p")
    assert rec is not None
    assert rec[DATA] == orjson.dumps(created)
    assert orjson.loads(rec[DATA])["metadata"]["resourceVersion"] == str(rec[RV]) == str(store.rv)
    assert rec[API_VERSION] == "v1"
    assert orjson.loads(rec[LABELS]) == {"app": "a", "tier": "t"}
    assert rec[OWNERS] == "u1"  # each uid once
    # the write's own object is served from those bytes, a copy of it is not (a dry run's)
    assert store.encoded(info.storage_key, created) is rec[DATA]
    assert store.encoded(info.storage_key, json_copy(created)) is None


def test_records_are_not_tracked_by_the_garbage_collector(store: ObjectStore) -> None:
    info = _info("pods")
    for i in range(50):
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": f"u{i % 5}"}
        store.create(
            info,
            {
                "metadata": {
                    "name": f"p{i}",
                    "namespace": "ns",
                    "labels": {"job": f"j{i % 5}", "index": str(i)},
                    "ownerReferences": [ref],
                },
                "spec": {"containers": [{"name": "c", "image": "i", "args": ["a", "b"]}]},
            },
        )
    gc.collect()  # a tuple is untracked by the first collection that sees it
    records = [rec for _, rec in store.iter_records(info.storage_key, None)]
    assert len(records) == 50
    assert not any(gc.is_tracked(rec) for rec in records)


def test_reads_parse_once_through_a_bounded_cache() -> None:
    store = ObjectStore(hub=WatchHub(history_size=4), parsed_cache_size=3)
    info = _info("configmaps")
    committed = [store.create(info, _cm("ns", f"c{i}")) for i in range(5)]
    # the last writes are what the write paths read next: served as committed
    assert store.get(info.storage_key, "ns", "c4") is committed[4]
    # an older one was evicted: parsed again from its bytes, once, then shared
    first = store.get(info.storage_key, "ns", "c0")
    assert first == committed[0] and first is not committed[0]
    assert store.get(info.storage_key, "ns", "c0") is first
    assert store.get(info.storage_key, "ns", "nope") is None


def test_lists_and_label_selectors_never_parse(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _info("pods")
    for i in range(6):
        store.create(info, _cm("ns", f"p{i}", labels={"even": str(i % 2 == 0)}))
    expected = [store.record(info.storage_key, "ns", f"p{i}") for i in (0, 2, 4)]
    monkeypatch.setattr(store_module, "orjson", _NoParse)
    records, last, _ = store.list_records(
        info.storage_key, "ns", label_selector=parse_label_selector("even=True")
    )
    assert records == expected and last is None
    # the same bytes objects, not copies: a LIST joins what the store holds
    assert all(a is b for a, b in zip(records, expected, strict=True))
    by_name = parse_field_selector("metadata.name=p3", supported=info.field_selectors)
    records, _, _ = store.list_records(info.storage_key, "ns", field_selector=by_name)
    assert [orjson.loads(r[DATA])["metadata"]["name"] for r in records] == ["p3"]


def test_a_field_selector_on_the_object_reads_it(store: ObjectStore) -> None:
    info = _info("pods")
    for i, node in enumerate(("n1", "n2", "n1")):
        store.create(info, {**_cm("ns", f"p{i}"), "spec": {"nodeName": node}})
    fsel = parse_field_selector("spec.nodeName=n1", supported=info.field_selectors)
    page, last, _ = store.list(info.storage_key, "ns", field_selector=fsel, limit=1)
    assert [o["metadata"]["name"] for o in page] == ["p0"] and last == ("ns", "p0")
    page, last, _ = store.list(info.storage_key, "ns", field_selector=fsel, after=last)
    assert [o["metadata"]["name"] for o in page] == ["p2"] and last is None


def _watcher(hub: WatchHub, key: Any, **kwargs: Any) -> Watcher:
    watcher = Watcher(
        key,
        namespace=kwargs.get("namespace"),
        label_selector=kwargs.get("label_selector"),
        field_selector=kwargs.get("field_selector"),
        api_version=kwargs.get("api_version"),
        max_buffer=100,
    )
    hub.register(watcher)
    return watcher


def test_watchers_share_one_event_line_built_from_the_record(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _info("configmaps")
    watchers = [_watcher(store.hub, info.storage_key, api_version="v1") for _ in range(3)]
    monkeypatch.setattr(watch_module, "orjson", _NoParse)
    store.create(info, _cm("ns", "x"))
    rec = store.record(info.storage_key, "ns", "x")
    assert rec is not None
    lines = [w.buffer[0] for w in watchers]
    assert lines[0] == event_line(ADDED, rec[DATA])
    assert all(line is lines[0] for line in lines)  # built once, shared


def test_a_watcher_under_another_version_gets_the_object_rewritten(store: ObjectStore) -> None:
    info = _info("configmaps")
    plain = _watcher(store.hub, info.storage_key)
    other = _watcher(store.hub, info.storage_key, api_version="v1beta1")
    store.create(info, _cm("ns", "x"))
    assert orjson.loads(plain.buffer[0])["object"]["apiVersion"] == "v1"
    event = orjson.loads(other.buffer[0])
    assert event["type"] == ADDED and event["object"]["apiVersion"] == "v1beta1"


def test_selecting_watchers_see_objects_enter_and_leave(store: ObjectStore) -> None:
    info = _info("pods")
    key = info.storage_key
    by_label = _watcher(store.hub, key, label_selector=parse_label_selector("app=a"))
    by_node = _watcher(
        store.hub,
        key,
        field_selector=parse_field_selector("spec.nodeName=n1", supported=info.field_selectors),
    )
    store.create(info, _cm("ns", "p"))
    store.update(info, {**_cm("ns", "p", labels={"app": "a"}), "spec": {"nodeName": "n1"}})
    store.update(info, {**_cm("ns", "p", labels={"app": "a"}), "spec": {"nodeName": "n1"}})
    store.update(info, {**_cm("ns", "p"), "spec": {"nodeName": "n2"}})
    store.delete(info, "ns", "p")
    for watcher in (by_label, by_node):
        assert [orjson.loads(line)["type"] for line in watcher.buffer] == [
            ADDED,
            MODIFIED,
            DELETED,
        ]


def test_owner_index_of_an_owner_with_many_dependents(store: ObjectStore) -> None:
    info = _info("pods")
    ref = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "big"}]
    names = [f"p{i:02d}" for i in range(40)]  # past the small-tuple size: a set then
    for name in names:
        store.create(info, {"metadata": {"name": name, "namespace": "ns", "ownerReferences": ref}})
    assert sorted(store.dependents("big")) == [(("", "pods"), ("ns", n)) for n in names]
    for name in names[:39]:
        store.delete(info, "ns", name)
    assert store.dependents("big") == [(("", "pods"), ("ns", "p39"))]
    store.delete(info, "ns", "p39")
    assert not store.has_dependents("big")


def test_what_the_store_keeps_per_object_is_not_scanned_by_the_collector() -> None:
    store = ObjectStore(hub=WatchHub(history_size=1000), parsed_cache_size=4)
    info = _info("pods")
    gc.collect()
    before = len(gc.get_objects())
    for i in range(2000):  # records, history events and the owner index: none stays tracked
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": f"o{i // 4}", "uid": f"u{i // 4}"}
        store.create(
            info,
            {
                "metadata": {
                    "name": f"p{i}",
                    "namespace": "ns",
                    "labels": {"job": f"j{i // 4}"},
                    "ownerReferences": [ref],
                },
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        )
    gc.collect()
    gc.collect()
    # a handful of containers (the sorted index's lists, the parse cache), not one per object
    assert len(gc.get_objects()) - before < 100


def test_a_deletion_sends_the_stored_bytes_at_the_deletion_rv(store: ObjectStore) -> None:
    info = _info("configmaps")
    watcher = _watcher(store.hub, info.storage_key)
    store.create(info, _cm("ns", "x", labels={"a": "b"}, annotations={"n": "1"}))
    gone = store.delete(info, "ns", "x")
    event = orjson.loads(watcher.buffer[-1])
    assert event["type"] == DELETED and event["object"] == gone
    assert watcher.buffer[-1] == event_line(DELETED, orjson.dumps(gone))  # byte for byte
    assert gone["metadata"]["resourceVersion"] == str(store.rv)


def test_owner_index_with_several_owners_and_odd_uids(store: ObjectStore) -> None:
    info = _info("pods")

    def refs(*uids: str) -> list[dict[str, str]]:
        return [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": u} for u in uids]

    store.create(
        info, {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": refs("a", "b", "a")}}
    )
    store.create(
        info,
        {"metadata": {"name": "q", "namespace": "ns", "ownerReferences": refs("n\x00ul", "b")}},
    )
    pod_p, pod_q = (("", "pods"), ("ns", "p")), (("", "pods"), ("ns", "q"))
    assert store.dependents("a") == [pod_p]
    assert sorted(store.dependents("b")) == [pod_p, pod_q]
    assert store.dependents("n\x00ul") == [pod_q] and store.dependents("n") == []
    store.update(info, {"metadata": {"name": "q", "namespace": "ns", "ownerReferences": refs("b")}})
    assert not store.has_dependents("n\x00ul") and sorted(store.dependents("b")) == [pod_p, pod_q]
