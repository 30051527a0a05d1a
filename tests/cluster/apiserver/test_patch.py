"""Merge, JSON, strategic-merge patches and server-side apply on plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetrain.cluster.apiserver.patch import (
    ApplyConflict,
    PatchError,
    json_patch,
    merge_patch,
    server_side_apply,
    strategic_merge_patch,
)

POD_KEYS = {
    ("spec", "containers"): "name",
    ("spec", "containers", "*", "env"): "name",
    ("spec", "containers", "*", "ports"): "containerPort",
    ("spec", "volumes"): "name",
    ("metadata", "finalizers"): "$set",
    ("status", "conditions"): "type",
}

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
    "spec": {
        "containers": [
            {"name": "main", "image": "img:1", "args": ["a", "b"],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "side", "image": "side:1"},
        ],
        "volumes": [{"name": "v1", "emptyDir": {}}],
    },
}  # fmt: skip


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": None, "y": 1}}
    frozen = copy.deepcopy(target)
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {"y": 1}}
    assert target == frozen
    assert merge_patch({"a": 1}, [1]) == [1]
    assert merge_patch([1], {"a": None}) == {}


def test_merge_patch_result_is_independent() -> None:
    target = {"keep": {"deep": [1]}, "x": 1}
    result = merge_patch(target, {"x": 2})
    result["keep"]["deep"].append(2)
    assert target["keep"]["deep"] == [1]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)
_json_no_null = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)


def _diff(a: Any, b: Any) -> Any:
    """A merge patch turning ``a`` into ``b`` (``b`` without nulls, as merge patch requires)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return b
    patch: dict[str, Any] = {key: None for key in a.keys() - b.keys()}
    for key, value in b.items():
        if key not in a:
            patch[key] = value
        elif a[key] != value:
            patch[key] = _diff(a[key], value) if isinstance(value, dict) else value
    return patch


@given(_json, st.dictionaries(st.text(max_size=2), _json_no_null, max_size=4))
def test_merge_patch_round_trip(a: Any, b: dict[str, Any]) -> None:
    assert merge_patch(a, _diff(a, b)) == b


def test_json_patch() -> None:
    ops = [
        {"op": "test", "path": "/metadata/name", "value": "p"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "img:2"},
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]
    result = json_patch(POD, ops)
    assert result["spec"]["containers"][0]["image"] == "img:2"
    assert result["metadata"]["labels"]["c"] == "3"
    assert result["metadata"]["finalizers"] == ["y"]
    assert POD["metadata"]["finalizers"] == ["x", "y"]


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/metadata/name", "value": "q"}],
        [{"op": "remove", "path": "/nope"}],
        [{"op": "frobnicate", "path": "/a"}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch(POD, ops)


def test_strategic_merge_by_key_and_atomic_lists() -> None:
    patch = {
        "metadata": {"labels": {"a": None, "c": "3"}, "finalizers": ["z", "x"]},
        "spec": {
            "containers": [
                {"name": "main", "image": "img:2", "args": ["c"],
                 "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]},
                {"name": "new", "image": "new:1"},
            ],
        },
    }  # fmt: skip
    frozen = copy.deepcopy(POD)
    result = strategic_merge_patch(POD, patch, POD_KEYS)
    assert frozen == POD
    assert result["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert result["metadata"]["finalizers"] == ["x", "y", "z"]
    main, side, new = result["spec"]["containers"]
    assert main == {
        "name": "main",
        "image": "img:2",
        "args": ["c"],  # not in merge keys: replaced atomically
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "20"},
                {"name": "C", "value": "3"}],
    }  # fmt: skip
    assert side == {"name": "side", "image": "side:1"}
    assert new == {"name": "new", "image": "new:1"}


def test_strategic_merge_directives() -> None:
    patch = {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]},
        "spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "main"}],
            "containers": [
                {"name": "main", "$patch": "delete"},
                {"name": "side", "image": "side:2"},
            ],
            "volumes": [{"name": "v2", "configMap": {"name": "c"}}, {"$patch": "replace"}],
        },
    }
    result = strategic_merge_patch(POD, patch, POD_KEYS)
    assert result["metadata"]["finalizers"] == ["y"]
    assert result["spec"]["containers"] == [{"name": "side", "image": "side:2"}]
    assert result["spec"]["volumes"] == [{"name": "v2", "configMap": {"name": "c"}}]

    replaced = strategic_merge_patch(
        POD, {"metadata": {"labels": {"$patch": "replace", "only": "me"}}}, POD_KEYS
    )
    assert replaced["metadata"]["labels"] == {"only": "me"}
    deleted = strategic_merge_patch(POD, {"metadata": {"labels": {"$patch": "delete"}}}, POD_KEYS)
    assert "labels" not in deleted["metadata"]
    retained = strategic_merge_patch(
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {},
    )
    assert retained == {"spec": {"strategy": {"type": "Recreate"}}}
    reordered = strategic_merge_patch(
        POD, {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "main"}]}},
        POD_KEYS,
    )  # fmt: skip
    assert [c["name"] for c in reordered["spec"]["containers"]] == ["side", "main"]


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"metadata": {"labels": {"$patch": "explode"}}}, "unknown patch type"),
        ({"spec": {"containers": [{"image": "x"}]}}, "no merge key 'name'"),
        ({"spec": {"containers": ["x"]}}, "items must be maps"),
    ],
)
def test_strategic_merge_errors(patch: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PatchError, match=fragment):
        strategic_merge_patch(POD, patch, POD_KEYS)


DEPLOY_KEYS = {("spec", "template", "spec", "containers"): "name"}


def _config(replicas: int, image: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "template": {"spec": {"containers": [{"name": "main", "image": image}]}},
        **extra,
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec}


def test_server_side_apply_create_records_fields_v1() -> None:
    obj = server_side_apply(
        None, _config(2, "img:1"), manager="kubectl", force=False, merge_keys=DEPLOY_KEYS,
        now="2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert obj["spec"]["replicas"] == 2
    (entry,) = obj["metadata"]["managedFields"]
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": "2026-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    'k:{"name":"main"}': {".": {}, "f:image": {}, "f:name": {}}}}},
            }
        },
    }  # fmt: skip


def test_server_side_apply_removes_fields_dropped_from_config() -> None:
    first = server_side_apply(
        None, _config(2, "img:1", paused=True), manager="a", force=False,
        merge_keys=DEPLOY_KEYS, now="t1",
    )  # fmt: skip
    second = server_side_apply(
        first, _config(2, "img:2"), manager="a", force=False, merge_keys=DEPLOY_KEYS, now="t2"
    )
    assert "paused" not in second["spec"]
    assert second["spec"]["template"]["spec"]["containers"] == [{"name": "main", "image": "img:2"}]
    assert first["spec"]["paused"] is True  # input untouched
    assert [e["time"] for e in second["metadata"]["managedFields"]] == ["t2"]


def test_server_side_apply_conflicts_and_force() -> None:
    obj = server_side_apply(
        None, _config(2, "img:1"), manager="a", force=False, merge_keys=DEPLOY_KEYS, now="t1"
    )
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(
            obj, _config(5, "img:1"), manager="b", force=False, merge_keys=DEPLOY_KEYS, now="t2"
        )
    assert info.value.conflicts == [("a", ".spec.replicas")]
    assert str(info.value) == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'

    # Same value: shared ownership, no conflict.
    shared = server_side_apply(
        obj, _config(2, "img:1"), manager="b", force=False, merge_keys=DEPLOY_KEYS, now="t2"
    )
    assert {e["manager"] for e in shared["metadata"]["managedFields"]} == {"a", "b"}

    forced = server_side_apply(
        obj, _config(5, "img:1"), manager="b", force=True, merge_keys=DEPLOY_KEYS, now="t2"
    )
    assert forced["spec"]["replicas"] == 5
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert "f:replicas" not in owners["a"]["f:spec"]
    assert "f:replicas" in owners["b"]["f:spec"]

    # A field still owned by another manager survives when this manager drops it.
    dropped = server_side_apply(
        shared, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        manager="b", force=False, merge_keys=DEPLOY_KEYS, now="t3",
    )  # fmt: skip
    assert dropped["spec"]["replicas"] == 2


def test_conflict_path_for_keyed_list_items() -> None:
    obj = server_side_apply(
        None, _config(1, "img:1"), manager="a", force=False, merge_keys=DEPLOY_KEYS, now="t"
    )
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(
            obj, _config(1, "img:2"), manager="b", force=False, merge_keys=DEPLOY_KEYS, now="t"
        )
    assert info.value.conflicts == [("a", '.spec.template.spec.containers[name="main"].image')]
