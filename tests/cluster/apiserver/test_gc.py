"""Garbage collection by ownerReferences: background, foreground, orphan, absent owners."""

from __future__ import annotations

from typing import Any

import pytest
from apiserver_helpers import WIDGETS, Raw, create_crd, eventually, widget, widget_crd

from kubetrain.cluster.apiserver.rest_common import DeleteOptions, WriteOptions
from kubetrain.cluster.embedded import EmbeddedCluster

# Talks HTTP only: also runs against a real kube-apiserver (--apiserver=real).
pytestmark = pytest.mark.http_api

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def ref(owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    """An ownerReference to ``owner``."""
    out = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block:
        out["blockOwnerDeletion"] = True
    return out


async def make(raw: Raw, path: str, name: str, *owners: dict[str, Any], **extra: Any) -> Any:
    """Create a ConfigMap (or a pod when ``path`` is PODS) owned by ``owners``."""
    meta: dict[str, Any] = {"name": name, **extra.pop("meta", {})}
    if owners:
        meta["ownerReferences"] = [ref(o, block=extra.get("block", False)) for o in owners]
    body: dict[str, Any] = {"metadata": meta}
    if path == PODS:
        body["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    status, obj, _ = await raw.post(path, body)
    assert status == 201, obj
    return obj


async def exists(raw: Raw, path: str) -> bool:
    return (await raw.get(path))[0] == 200


async def test_background_deletion_collects_dependents(cluster: EmbeddedCluster, raw: Raw) -> None:
    owner = await make(raw, CM, "owner")
    await make(raw, CM, "dep-cm", owner)
    await make(raw, PODS, "dep-pod", owner)
    await make(raw, CM, "bystander")
    status, _, _ = await raw.delete(f"{CM}/owner", params={"propagationPolicy": "Background"})
    assert status == 200
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/dep-cm")
    assert not await exists(raw, f"{PODS}/dep-pod")
    assert await exists(raw, f"{CM}/bystander")


async def test_collection_recurses_through_generations(cluster: EmbeddedCluster, raw: Raw) -> None:
    root = await make(raw, CM, "root")
    child = await make(raw, CM, "child", root)
    await make(raw, CM, "grandchild", child)
    await raw.delete(f"{CM}/root")  # default propagation: background
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/child")
    assert not await exists(raw, f"{CM}/grandchild")


async def test_dependent_with_another_live_owner_only_loses_the_reference(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    first = await make(raw, CM, "first")
    second = await make(raw, CM, "second")
    await make(raw, CM, "shared", first, second)
    await raw.delete(f"{CM}/first")
    await cluster.api.gc.wait_idle()
    status, shared, _ = await raw.get(f"{CM}/shared")
    assert status == 200
    assert [r["uid"] for r in shared["metadata"]["ownerReferences"]] == [second["metadata"]["uid"]]
    await raw.delete(f"{CM}/second")
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/shared")


async def test_foreground_waits_for_blocking_dependents(cluster: EmbeddedCluster, raw: Raw) -> None:
    owner = await make(raw, CM, "fg-owner")
    await make(raw, CM, "held", owner, block=True, meta={"finalizers": ["example.com/hold"]})
    await make(raw, CM, "free", owner, block=True)
    status, body, _ = await raw.delete(f"{CM}/fg-owner", params={"propagationPolicy": "Foreground"})
    assert status == 200 and body["metadata"]["finalizers"] == ["foregroundDeletion"]
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/free")
    status, held, _ = await raw.get(f"{CM}/held")
    assert status == 200 and held["metadata"]["deletionTimestamp"]
    status, still, _ = await raw.get(f"{CM}/fg-owner")
    assert status == 200 and still["metadata"]["finalizers"] == ["foregroundDeletion"]
    # the last blocking dependent goes -> the owner's finalizer is removed -> the owner goes
    await raw.patch(f"{CM}/held", {"metadata": {"finalizers": None}})
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/held")
    assert not await exists(raw, f"{CM}/fg-owner")


async def test_foreground_does_not_wait_for_non_blocking_dependents(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    owner = await make(raw, CM, "nb-owner")
    await make(raw, CM, "nb-held", owner, meta={"finalizers": ["example.com/hold"]})
    await raw.delete(f"{CM}/nb-owner", params={"propagationPolicy": "Foreground"})
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/nb-owner")
    status, held, _ = await raw.get(f"{CM}/nb-held")
    assert status == 200 and held["metadata"]["deletionTimestamp"]
    await raw.patch(f"{CM}/nb-held", {"metadata": {"finalizers": None}})


async def test_foreground_is_recursive(cluster: EmbeddedCluster, raw: Raw) -> None:
    top = await make(raw, CM, "top")
    mid = await make(raw, CM, "mid", top, block=True)
    await make(raw, CM, "leaf", mid, block=True, meta={"finalizers": ["example.com/hold"]})
    await raw.delete(f"{CM}/top", params={"propagationPolicy": "Foreground"})
    await cluster.api.gc.wait_idle()
    # mid is deleted in foreground too (it has dependents) and waits for leaf; top waits for mid
    _, mid_now, _ = await raw.get(f"{CM}/mid")
    assert mid_now["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert await exists(raw, f"{CM}/top")
    await raw.patch(f"{CM}/leaf", {"metadata": {"finalizers": None}})
    await cluster.api.gc.wait_idle()
    for name in ("leaf", "mid", "top"):
        assert not await exists(raw, f"{CM}/{name}"), name


async def test_orphan_removes_references_and_keeps_dependents(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    owner = await make(raw, CM, "or-owner")
    other = await make(raw, CM, "or-other")
    await make(raw, CM, "orphan-a", owner)
    await make(raw, CM, "orphan-b", owner, other)
    status, body, _ = await raw.delete(f"{CM}/or-owner", params={"propagationPolicy": "Orphan"})
    assert status == 200 and body["metadata"]["finalizers"] == ["orphan"]
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/or-owner")
    _, a, _ = await raw.get(f"{CM}/orphan-a")
    assert "ownerReferences" not in a["metadata"]
    _, b, _ = await raw.get(f"{CM}/orphan-b")
    assert [r["name"] for r in b["metadata"]["ownerReferences"]] == ["or-other"]


async def test_dependents_of_absent_owners_are_collected(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    live = await make(raw, CM, "live")
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "never-created", "uid": "0d4a6b2c-0000-4000-8000-000000000001"},
    }
    impostor = {
        **live,
        "metadata": {**live["metadata"], "uid": "0d4a6b2c-0000-4000-8000-00000000002"},
    }
    await make(raw, CM, "of-ghost", ghost)
    await make(raw, CM, "of-impostor", impostor)  # right name, wrong uid
    await make(raw, CM, "of-live", live)
    await cluster.api.gc.wait_idle()
    assert not await exists(raw, f"{CM}/of-ghost")
    assert not await exists(raw, f"{CM}/of-impostor")
    assert await exists(raw, f"{CM}/of-live")


async def test_unserved_owner_kind_is_left_alone(cluster: EmbeddedCluster, raw: Raw) -> None:
    unknown = {
        "apiVersion": "nowhere.example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "uid": "0d4a6b2c-0000-4000-8000-000000000003"},
    }
    await make(raw, CM, "of-unknown", unknown)
    await cluster.api.gc.wait_idle()
    assert await exists(raw, f"{CM}/of-unknown")


async def test_recreated_owner_does_not_adopt_old_dependents(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    old_owner = await make(raw, CM, "phoenix")
    await make(raw, CM, "old-dep", old_owner, meta={"finalizers": ["example.com/hold"]})
    await raw.delete(f"{CM}/phoenix")
    await make(raw, CM, "phoenix")  # same name, new uid
    await cluster.api.gc.wait_idle()
    _, dep, _ = await raw.get(f"{CM}/old-dep")
    assert dep["metadata"]["deletionTimestamp"]  # collected (held only by its own finalizer)
    await raw.patch(f"{CM}/old-dep", {"metadata": {"finalizers": None}})
    assert not await exists(raw, f"{CM}/old-dep")


async def test_custom_resource_owner_and_cluster_scoped_owner(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    await create_crd(raw, widget_crd())
    _, w, _ = await raw.post(WIDGETS, widget("w1"))
    await make(raw, PODS, "w1-pod", w)
    _, ns, _ = await raw.post("/api/v1/namespaces", {"metadata": {"name": "owner-ns"}})
    await make(raw, CM, "ns-owned", ns)  # namespaced dependent of a cluster-scoped owner
    await cluster.api.gc.wait_idle()
    assert await exists(raw, f"{PODS}/w1-pod") and await exists(raw, f"{CM}/ns-owned")
    await raw.delete(f"{WIDGETS}/w1")
    await raw.delete("/api/v1/namespaces/owner-ns")
    await cluster.api.gc.wait_idle()
    await cluster.api.namespace_controller.wait_idle()
    await cluster.api.gc.wait_idle()

    async def collected() -> bool:
        return not await exists(raw, f"{PODS}/w1-pod") and not await exists(raw, f"{CM}/ns-owned")

    # a real GC only watches a new CRD's resource after its next discovery resync (<= 30 s)
    await eventually(collected, "dependents of the widget and the namespace collected", timeout=60)


@pytest.mark.embedded_only(reason="drives cluster.api.rest directly")
async def test_burst_of_owner_deletes(cluster: EmbeddedCluster, raw: Raw) -> None:
    """Many owners at once: every dependent goes, nothing else is touched."""
    api = cluster.api
    info = api.registry.lookup("", "v1", "configmaps")
    assert info is not None
    owners = []
    for i in range(50):
        owners.append(
            await api.rest.create(info, "default", {"metadata": {"name": f"b{i}"}}, WriteOptions())
        )
        for j in range(8):
            await api.rest.create(
                info,
                "default",
                {"metadata": {"name": f"b{i}-{j}", "ownerReferences": [ref(owners[-1])]}},
                WriteOptions(),
            )
    await api.gc.wait_idle()
    assert api.store.count(info.storage_key, "default") == 50 * 9
    for i in range(50):
        await api.rest.delete(info, "default", f"b{i}", DeleteOptions())
    await api.gc.wait_idle()
    assert api.store.count(info.storage_key, "default") == 0


@pytest.mark.embedded_only(reason="drives cluster.api.rest directly")
async def test_requests_are_served_while_a_burst_is_collected(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    """The GC yields between items: an API call finishes while thousands of deletes wait."""
    api = cluster.api
    info = api.registry.lookup("", "v1", "configmaps")
    assert info is not None
    for i in range(300):
        owner = await api.rest.create(
            info, "default", {"metadata": {"name": f"o{i}"}}, WriteOptions()
        )
        for j in range(8):
            await api.rest.create(
                info,
                "default",
                {"metadata": {"name": f"o{i}-{j}", "ownerReferences": [ref(owner)]}},
                WriteOptions(),
            )
    await api.gc.wait_idle()
    api.gc.options.time_slice_seconds = 0.0  # one item per loop iteration: no timing involved
    for i in range(300):
        await api.rest.delete(info, "default", f"o{i}", DeleteOptions())
    assert not api.gc.queue.idle
    status, _, _ = await raw.get("/api/v1/namespaces/default")
    assert status == 200
    assert not api.gc.queue.idle  # answered before the 2,400 dependents were all collected
    await api.gc.wait_idle()
    assert api.store.count(info.storage_key, "default") == 0
