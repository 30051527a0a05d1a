"""Namespace deletion: Terminating, content removal (respecting finalizers), finalization."""

from __future__ import annotations

import pytest
from apiserver_helpers import Raw, create_crd, eventually, widget, widget_crd

from kubetrain.cluster.embedded import EmbeddedCluster

# Talks HTTP only: also runs against a real kube-apiserver (--apiserver=real).
pytestmark = pytest.mark.http_api

NS = "/api/v1/namespaces"


async def _fill(raw: Raw, ns: str) -> None:
    assert (await raw.post(NS, {"metadata": {"name": ns}}))[0] == 201
    for i in range(3):
        status, _, _ = await raw.post(f"{NS}/{ns}/configmaps", {"metadata": {"name": f"cm{i}"}})
        assert status == 201
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert (await raw.post(f"{NS}/{ns}/pods", pod))[0] == 201
    assert (await raw.post(f"{NS}/{ns}/secrets", {"metadata": {"name": "s"}}))[0] == 201
    assert (await raw.post(f"/apis/example.com/v1/namespaces/{ns}/widgets", widget("w")))[0] == 201


async def settle(cluster: EmbeddedCluster) -> None:
    """Wait until the namespace controller and the GC are both idle at once."""
    api = cluster.api
    while True:
        await api.namespace_controller.wait_idle()
        await api.gc.wait_idle()
        if api.namespace_controller.queue.idle and api.gc.queue.idle:
            return


async def gone(raw: Raw, path: str) -> None:
    """Wait (bounded) until ``path`` answers 404."""

    async def absent() -> bool:
        return (await raw.get(path))[0] == 404

    await eventually(absent, f"{path} deleted", timeout=60.0)


async def test_deleting_a_namespace_removes_its_content_then_itself(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    await create_crd(raw, widget_crd())
    await _fill(raw, "team-a")
    await _fill(raw, "team-b")
    status, body, _ = await raw.delete(f"{NS}/team-a")
    assert status == 200
    assert body["status"]["phase"] == "Terminating"
    assert body["spec"]["finalizers"] == ["kubernetes"]
    assert body["metadata"]["deletionTimestamp"]
    await settle(cluster)
    await gone(raw, f"{NS}/team-a")
    for path in ("configmaps", "pods", "secrets"):
        _, items, _ = await raw.get(f"{NS}/team-a/{path}")
        assert items["items"] == [], path
    _, widgets, _ = await raw.get("/apis/example.com/v1/namespaces/team-a/widgets")
    assert widgets["items"] == []
    # the other namespace is untouched
    _, cms, _ = await raw.get(f"{NS}/team-b/configmaps")
    assert len(cms["items"]) == 3
    _, widgets, _ = await raw.get("/apis/example.com/v1/namespaces/team-b/widgets")
    assert len(widgets["items"]) == 1
    # and the name can be used again
    assert (await raw.post(NS, {"metadata": {"name": "team-a"}}))[0] == 201


async def test_finalizers_hold_the_namespace_in_terminating(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    await raw.post(NS, {"metadata": {"name": "held"}})
    await raw.post(
        f"{NS}/held/configmaps", {"metadata": {"name": "keep", "finalizers": ["example.com/hold"]}}
    )
    await raw.post(f"{NS}/held/configmaps", {"metadata": {"name": "free"}})
    await raw.delete(f"{NS}/held")
    await settle(cluster)
    # a real namespace controller writes the conditions a few seconds after the deletion
    conditions: dict[str, dict[str, str]] = {}

    async def conditions_written() -> bool:
        status, ns, _ = await raw.get(f"{NS}/held")
        assert status == 200 and ns["status"]["phase"] == "Terminating"
        conditions.clear()
        conditions.update({c["type"]: c for c in ns["status"].get("conditions") or []})
        return conditions.get("NamespaceFinalizersRemaining", {}).get("status") == "True"

    await eventually(conditions_written, "namespace conditions written", timeout=30.0)
    assert conditions["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )
    assert conditions["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource "
        "instances"
    )
    assert (await raw.get(f"{NS}/held/configmaps/free"))[0] == 404
    status, keep, _ = await raw.get(f"{NS}/held/configmaps/keep")
    assert status == 200 and keep["metadata"]["deletionTimestamp"]
    # creates are refused while it terminates
    status, body, _ = await raw.post(f"{NS}/held/configmaps", {"metadata": {"name": "late"}})
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace held '
        "because it is being terminated"
    )
    # the finalizer goes -> the object goes -> the namespace goes
    await raw.patch(f"{NS}/held/configmaps/keep", {"metadata": {"finalizers": None}})
    await settle(cluster)
    await gone(raw, f"{NS}/held")


@pytest.mark.embedded_only(reason="counts in cluster.api.store")
async def test_owned_objects_in_a_deleted_namespace_are_removed_once(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    """The namespace controller and the GC both delete owned content; neither trips the other."""
    await raw.post(NS, {"metadata": {"name": "mixed"}})
    _, owner, _ = await raw.post(f"{NS}/mixed/configmaps", {"metadata": {"name": "owner"}})
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    for i in range(5):
        await raw.post(
            f"{NS}/mixed/configmaps", {"metadata": {"name": f"d{i}", "ownerReferences": [ref]}}
        )
    await raw.delete(f"{NS}/mixed/configmaps/owner", params={"propagationPolicy": "Foreground"})
    await raw.delete(f"{NS}/mixed")
    await settle(cluster)
    assert (await raw.get(f"{NS}/mixed"))[0] == 404
    assert cluster.api.store.count(("", "configmaps"), "mixed") == 0
