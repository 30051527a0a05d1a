"""Deletion: finalizers, deletionTimestamp, propagation policies, preconditions, collections."""

from __future__ import annotations

import pytest
from apiserver_helpers import Raw

# Talks HTTP only: also runs against a real kube-apiserver (--apiserver=real).
pytestmark = pytest.mark.http_api

CM = "/api/v1/namespaces/default/configmaps"


async def test_finalizers_keep_the_object_until_removed(raw: Raw) -> None:
    await raw.post(CM, {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}})
    status, body, _ = await raw.delete(f"{CM}/f")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["deletionGracePeriodSeconds"] == 0
    assert "generation" not in body["metadata"]  # a ConfigMap has none, none is bumped
    status, obj, _ = await raw.get(f"{CM}/f")
    assert status == 200
    # no new finalizers on a deleting object
    obj["metadata"]["finalizers"] = ["example.com/hold", "example.com/more"]
    status, body, _ = await raw.put(f"{CM}/f", obj)
    assert status == 422 and body["details"]["causes"][0]["field"] == "metadata.finalizers"
    status, body, _ = await raw.patch(f"{CM}/f", {"metadata": {"finalizers": None}})
    assert status == 200
    assert (await raw.get(f"{CM}/f"))[0] == 404


async def test_removal_event_carries_the_last_stored_state(raw: Raw) -> None:
    """Like kube: the update that drops the last finalizer answers the object as updated at the
    last stored resourceVersion, writes no MODIFIED, and the DELETED event carries the last
    stored state (its finalizers as they were) at a new resourceVersion."""
    _, obj, _ = await raw.post(CM, {"metadata": {"name": "ev", "finalizers": ["x/y", "a/b"]}})
    rv = obj["metadata"]["resourceVersion"]
    await raw.delete(f"{CM}/ev")
    _, held, _ = await raw.patch(f"{CM}/ev", {"metadata": {"finalizers": ["a/b"]}})
    held_rv = held["metadata"]["resourceVersion"]
    status, last, _ = await raw.patch(f"{CM}/ev", {"metadata": {"finalizers": []}})
    assert status == 200
    assert last["metadata"].get("finalizers", []) == []
    assert last["metadata"]["resourceVersion"] == held_rv
    events = await raw.watch_lines(
        CM, {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}, 3
    )
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    deleted = events[2]["object"]["metadata"]
    assert deleted["finalizers"] == ["a/b"]
    assert int(deleted["resourceVersion"]) > int(held_rv)


async def test_propagation_policies_set_finalizers(raw: Raw) -> None:
    for name, policy, finalizer in (
        ("fg", "Foreground", "foregroundDeletion"),
        ("or", "Orphan", "orphan"),
    ):
        await raw.post(CM, {"metadata": {"name": name}})
        status, body, _ = await raw.delete(f"{CM}/{name}", params={"propagationPolicy": policy})
        assert status == 200
        assert body["metadata"]["finalizers"] == [finalizer]
        assert body["metadata"]["deletionTimestamp"]
    # also from a DeleteOptions body
    await raw.post(CM, {"metadata": {"name": "body"}})
    _, body, _ = await raw.delete(
        f"{CM}/body",
        {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"},
    )
    assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    await raw.post(CM, {"metadata": {"name": "bg"}})
    status, body, _ = await raw.delete(f"{CM}/bg", params={"propagationPolicy": "Background"})
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"]["name"] == "bg" and body["details"]["kind"] == "configmaps"
    status, body, _ = await raw.delete(f"{CM}/fg", params={"propagationPolicy": "Sideways"})
    assert status == 422


async def test_delete_preconditions(raw: Raw) -> None:
    _, obj, _ = await raw.post(CM, {"metadata": {"name": "pre"}})
    status, body, _ = await raw.delete(f"{CM}/pre", {"preconditions": {"uid": "not-it"}})
    assert (status, body["reason"]) == (409, "Conflict")
    uid, rv = obj["metadata"]["uid"], obj["metadata"]["resourceVersion"]
    assert body["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "pre": the UID in the precondition '
        f"(not-it) does not match the UID in record ({uid}). The object might have been "
        "deleted and then recreated"
    )
    assert body["details"] == {"name": "pre", "kind": "ConfigMap"}
    status, body, _ = await raw.delete(f"{CM}/pre", {"preconditions": {"resourceVersion": "1"}})
    assert status == 409
    assert body["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "pre": the ResourceVersion in the '
        f"precondition (1) does not match the ResourceVersion in record ({rv}). The object "
        "might have been modified"
    )
    status, _, _ = await raw.delete(
        f"{CM}/pre",
        {
            "preconditions": {
                "uid": obj["metadata"]["uid"],
                "resourceVersion": obj["metadata"]["resourceVersion"],
            }
        },
    )
    assert status == 200
    assert (await raw.delete(f"{CM}/pre"))[0] == 404


async def test_delete_collection_with_selector(raw: Raw) -> None:
    for i in range(4):
        await raw.post(CM, {"metadata": {"name": f"dc{i}", "labels": {"even": str(i % 2 == 0)}}})
    status, body, _ = await raw.delete(CM, params={"labelSelector": "even=True"})
    assert status == 200
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["dc0", "dc2"]
    _, body, _ = await raw.get(CM)
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["dc1", "dc3"]


async def test_pods_on_a_node_are_deleted_gracefully(raw: Raw) -> None:
    pods = "/api/v1/namespaces/default/pods"
    spec = {"containers": [{"name": "c", "image": "i"}], "terminationGracePeriodSeconds": 10}
    await raw.post(pods, {"metadata": {"name": "unbound"}, "spec": spec})
    status, body, _ = await raw.delete(f"{pods}/unbound")
    assert status == 200 and (await raw.get(f"{pods}/unbound"))[0] == 404
    await raw.post(pods, {"metadata": {"name": "bound"}, "spec": {**spec, "nodeName": "n1"}})
    status, body, _ = await raw.delete(f"{pods}/bound")
    assert status == 200
    assert body["metadata"]["deletionGracePeriodSeconds"] == 10
    assert (await raw.get(f"{pods}/bound"))[0] == 200  # the kubelet has not confirmed yet
    status, body, _ = await raw.delete(f"{pods}/bound", params={"gracePeriodSeconds": "0"})
    assert status == 200
    assert (await raw.get(f"{pods}/bound"))[0] == 404
