"""Store: keys, indexes kept exact through every write, replace results, mutation detection."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from informer_fakes import pod

from kubetrain.base.objects import object_key, split_key
from kubetrain.informers.indexers import (
    CONTROLLER_UID_INDEX,
    NAMESPACE_INDEX,
    controller_uid_index,
    label_index,
    label_index_name,
    namespace_index,
)
from kubetrain.informers.store import CacheMutationError, IndexNotFoundError, Store
from kubetrain.informers.tombstone import DeletedFinalStateUnknown

JOB = "training.kubeflow.org/job-name"


def owned(name: str, rv: str, owner_uid: str, *, ns: str = "default", job: str = "j") -> Any:
    obj = pod(name, rv, namespace=ns, labels={JOB: job})
    obj["metadata"]["ownerReferences"] = [
        {"kind": "Other", "uid": "not-the-controller"},
        {"kind": "PyTorchJob", "uid": owner_uid, "controller": True},
    ]
    return obj


def indexed_store() -> Store:
    return Store(
        indexers={
            CONTROLLER_UID_INDEX: controller_uid_index,
            label_index_name(JOB): label_index(JOB),
        }
    )


def test_keys_are_namespace_slash_name_or_name() -> None:
    assert object_key(pod("a", "1", namespace="ns")) == "ns/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("node-1") == (None, "node-1")
    with pytest.raises(ValueError, match=r"metadata\.name"):
        object_key({"kind": "Pod", "metadata": {}})


def test_indexes_follow_adds_updates_and_deletes() -> None:
    store = indexed_store()
    store.upsert(owned("p0", "1", "uid-a", job="a"))
    store.upsert(owned("p1", "2", "uid-a", job="a"))
    store.upsert(owned("p0", "1", "uid-b", ns="other", job="a"))
    assert sorted(store.index_keys(CONTROLLER_UID_INDEX, "uid-a")) == ["default/p0", "default/p1"]
    assert store.index_keys(label_index_name(JOB), "other/a") == ["other/p0"]
    assert sorted(store.index_values(NAMESPACE_INDEX)) == ["default", "other"]

    # p1 moves to another job: it leaves the old index values.
    old = store.upsert(owned("p1", "3", "uid-c", job="c"))
    assert old is not None and old["metadata"]["resourceVersion"] == "2"
    assert store.index_keys(CONTROLLER_UID_INDEX, "uid-a") == ["default/p0"]
    assert store.index_keys(label_index_name(JOB), "default/c") == ["default/p1"]

    store.delete(owned("p0", "4", "uid-a"))
    assert store.index_keys(CONTROLLER_UID_INDEX, "uid-a") == []
    assert "uid-a" not in store.index_values(CONTROLLER_UID_INDEX)  # no empty sets left behind
    assert store.by_index(NAMESPACE_INDEX, "default")[0]["metadata"]["name"] == "p1"
    assert store.resource_version == "4"


def test_unknown_index_names_the_known_ones_and_the_fix() -> None:
    store = Store()
    with pytest.raises(IndexNotFoundError, match=r"'by-node'.*add_indexers"):
        store.by_index("by-node", "n1")


def test_add_indexers_indexes_existing_items_and_rejects_a_clash() -> None:
    store = Store()
    store.upsert(owned("p0", "1", "uid-a"))
    func = controller_uid_index
    store.add_indexers({CONTROLLER_UID_INDEX: func})
    assert store.index_keys(CONTROLLER_UID_INDEX, "uid-a") == ["default/p0"]
    store.add_indexers({CONTROLLER_UID_INDEX: func})  # same function: fine
    with pytest.raises(ValueError, match="already exists"):
        store.add_indexers({CONTROLLER_UID_INDEX: label_index(JOB)})


def test_replace_reports_added_changed_unchanged_and_tombstones() -> None:
    store = indexed_store()
    store.replace(
        [owned("keep", "1", "u"), owned("change", "2", "u"), owned("gone", "3", "u")], "3"
    )
    kept = store.get("default/keep")
    result = store.replace(
        [owned("keep", "1", "u"), owned("change", "5", "v"), owned("new", "6", "u")], "6"
    )
    assert [object_key(o) for o in result.added] == ["default/new"]
    unchanged, changed = result.updated
    assert unchanged[0] is unchanged[1] is kept  # same RV: the cached object stays
    assert changed[0]["metadata"]["resourceVersion"] == "2"
    assert changed[1]["metadata"]["resourceVersion"] == "5"
    (tomb,) = result.deleted
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.key == "default/gone" and tomb.obj["metadata"]["resourceVersion"] == "3"
    assert sorted(store.keys()) == ["default/change", "default/keep", "default/new"]
    assert sorted(store.index_keys(CONTROLLER_UID_INDEX, "u")) == ["default/keep", "default/new"]
    assert store.resource_version == "6"


def test_bookmark_advances_the_resource_version() -> None:
    store = Store()
    store.replace([], "10")
    store.bookmark("15")
    store.bookmark("")
    assert store.resource_version == "15"


def test_mutation_detector_names_the_mutated_key() -> None:
    store = Store(detect_mutations=True)
    store.upsert(pod("a", "1"))
    cached = store.get("default/a")
    assert cached is not None
    store.check_mutations()
    cached["status"]["phase"] = "Hacked"
    with pytest.raises(CacheMutationError, match=r"'default/a'.*copy"):
        store.check_mutations()
    with pytest.raises(CacheMutationError):
        store.upsert(pod("a", "2"))


def test_mutation_detector_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBETRAIN_CACHE_MUTATION_DETECTOR", raising=False)
    store = Store()
    store.upsert(pod("a", "1"))
    store.get("default/a")["status"]["phase"] = "x"  # type: ignore[index]
    store.check_mutations()
    monkeypatch.setenv("KUBETRAIN_CACHE_MUTATION_DETECTOR", "true")
    detecting = Store()
    detecting.upsert(pod("a", "1"))
    detecting.get("default/a")["status"]["phase"] = "x"  # type: ignore[index]
    with pytest.raises(CacheMutationError):
        detecting.check_mutations()


# -- property: indexes always equal indexes rebuilt from scratch -----------------------------

names = st.sampled_from(["a", "b", "c", "d"])
namespaces = st.sampled_from(["n1", "n2"])
owners = st.sampled_from(["u1", "u2", "u3"])
jobs = st.sampled_from(["x", "y"])
objects = st.builds(
    lambda n, ns, o, j, rv: owned(n, str(rv), o, ns=ns, job=j),
    names,
    namespaces,
    owners,
    jobs,
    st.integers(1, 5),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), objects),
        st.tuples(st.just("delete"), objects),
        st.tuples(st.just("replace"), st.lists(objects, max_size=6)),
    ),
    max_size=25,
)


def rebuilt(store: Store, index_name: str, func: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for obj in store.list():
        for value in func(obj):
            out.setdefault(value, set()).add(object_key(obj))
    return out


@settings(max_examples=150, deadline=None)
@given(ops)
def test_indexes_equal_a_rebuild_after_any_sequence_of_writes(seq: list[Any]) -> None:
    store = indexed_store()
    for op, arg in seq:
        if op == "upsert":
            store.upsert(arg)
        elif op == "delete":
            store.delete(arg)
        else:
            unique = {object_key(o): o for o in arg}
            store.replace(list(unique.values()), "9")
    for name, func in [
        (NAMESPACE_INDEX, namespace_index),
        (CONTROLLER_UID_INDEX, controller_uid_index),
    ]:
        actual = {v: set(store.index_keys(name, v)) for v in store.index_values(name)}
        assert actual == rebuilt(store, name, func)


def test_gc_pause_nests_and_restores_the_collector() -> None:
    import gc

    from kubetrain.informers.gcpause import gc_paused

    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: stays off
    finally:
        gc.enable()
