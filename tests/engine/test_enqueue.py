"""Handlers: which keys an event enqueues, at which priority; and a controller fed by a real
informer on the embedded cluster."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fakes import RecordingQueue
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.enqueue import (
    EnqueueForObject,
    EnqueueForOwner,
    EnqueueMapped,
    bind,
    is_unchanged,
)
from kubetrain.engine.queue import LOW_PRIORITY, NORMAL_PRIORITY
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.informer import SharedInformer
from kubetrain.informers.resource import CONFIGMAPS, NODES, kubeflow
from kubetrain.informers.tombstone import DeletedFinalStateUnknown

PYTORCHJOB = kubeflow("PyTorchJob")


def obj(name: str, rv: str = "1", namespace: str | None = "ns", **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {"metadata": metadata}


def owned(name: str, owner: str, rv: str = "1", **ref: Any) -> dict[str, Any]:
    reference = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "name": owner,
        "uid": f"uid-{owner}",
        "controller": True,
        **ref,
    }
    return obj(name, rv, ownerReferences=[reference])


def test_own_key_priorities() -> None:
    queue = RecordingQueue()
    handler = EnqueueForObject()
    a1, a2 = obj("a", "1"), obj("a", "2")
    handler.on_add(a1, True, queue)
    handler.on_add(a1, False, queue)
    handler.on_update(a1, a1, queue)  # resync
    handler.on_update(a1, obj("a", "1"), queue)  # relisted, unchanged RV
    handler.on_update(a1, a2, queue)
    handler.on_delete(a2, queue)
    handler.on_delete(DeletedFinalStateUnknown("ns/gone", obj("gone")), queue)
    handler.on_add(obj("node-1", namespace=None), False, queue)
    assert queue.added == [
        ("ns/a", LOW_PRIORITY),
        ("ns/a", NORMAL_PRIORITY),
        ("ns/a", LOW_PRIORITY),
        ("ns/a", LOW_PRIORITY),
        ("ns/a", NORMAL_PRIORITY),
        ("ns/a", NORMAL_PRIORITY),
        ("ns/gone", NORMAL_PRIORITY),
        ("node-1", NORMAL_PRIORITY),
    ]


def test_is_unchanged() -> None:
    a = obj("a", "5")
    assert is_unchanged(a, a)
    assert is_unchanged(a, obj("a", "5"))
    assert not is_unchanged(a, obj("a", "6"))
    assert not is_unchanged(obj("a", ""), obj("a", ""))  # no RV: cannot tell, assume changed


def test_owner_key_follows_only_the_controller_reference_of_the_kind() -> None:
    handler = EnqueueForOwner(PYTORCHJOB)
    assert handler.owner_key(owned("p", "job")) == "ns/job"
    assert handler.owner_key(owned("p", "job", apiVersion="kubeflow.org/v2")) == "ns/job"
    assert handler.owner_key(owned("p", "job", controller=False)) is None
    assert handler.owner_key(owned("p", "job", kind="TFJob")) is None
    assert handler.owner_key(owned("p", "job", apiVersion="other.io/v1")) is None
    assert handler.owner_key(obj("p")) is None
    not_controller = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "name": "other",
        "uid": "u",
    }
    pod = owned("p", "job")
    pod["metadata"]["ownerReferences"].insert(0, not_controller)
    assert handler.owner_key(pod) == "ns/job"
    assert EnqueueForOwner(NODES).owner_key(owned("p", "node-1", apiVersion="v1", kind="Node")) == (
        "node-1"
    )


def test_owner_events_and_priorities() -> None:
    queue = RecordingQueue()
    handler = EnqueueForOwner(PYTORCHJOB)
    p1 = owned("pod", "job-a", "1")
    handler.on_add(p1, True, queue)
    handler.on_update(p1, p1, queue)
    handler.on_update(p1, owned("pod", "job-a", "2"), queue)
    handler.on_update(owned("pod", "job-a", "2"), owned("pod", "job-b", "3"), queue)
    handler.on_delete(DeletedFinalStateUnknown("ns/pod", owned("pod", "job-b", "3")), queue)
    handler.on_add(obj("orphan"), False, queue)
    assert queue.added == [
        ("ns/job-a", LOW_PRIORITY),
        ("ns/job-a", LOW_PRIORITY),
        ("ns/job-a", NORMAL_PRIORITY),
        ("ns/job-b", NORMAL_PRIORITY),
        ("ns/job-a", NORMAL_PRIORITY),  # the old owner too
        ("ns/job-b", NORMAL_PRIORITY),
    ]


def test_mapped_handler_unions_old_and_new() -> None:
    queue = RecordingQueue()

    def by_label(o: dict[str, Any]) -> list[str]:
        job = (o["metadata"].get("labels") or {}).get("job")
        return [f"{o['metadata']['namespace']}/{job}"] if job else []

    handler = EnqueueMapped(by_label)
    old = obj("p", "1", labels={"job": "x"})
    new = obj("p", "2", labels={"job": "y"})
    handler.on_add(old, True, queue)
    handler.on_update(old, new, queue)
    handler.on_delete(obj("q"), queue)
    assert queue.added[0] == ("ns/x", LOW_PRIORITY)
    assert sorted(queue.added[1:]) == [("ns/x", NORMAL_PRIORITY), ("ns/y", NORMAL_PRIORITY)]


def test_bind_adapts_to_the_informer_interface() -> None:
    queue = RecordingQueue()
    bound = bind(EnqueueForObject(), queue)
    bound.on_add(obj("a"), False)
    bound.on_update(obj("a"), obj("a", "2"))
    bound.on_delete(obj("a"))
    assert [key for key, _ in queue.added] == ["ns/a"] * 3


async def wait_for(condition: Any, changed: asyncio.Event, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await changed.wait()
            changed.clear()


async def test_controller_reconciles_informer_keys(api: ApiClient) -> None:
    await api.create(CONFIGMAPS, obj("before", namespace="default"))
    reconciled: list[str] = []
    changed = asyncio.Event()

    async def reconcile(request: Request) -> Result:
        reconciled.append(request.key)
        changed.set()
        return Result()

    informer = SharedInformer(api, CONFIGMAPS, namespace="default")
    controller = Controller(
        "configmaps", reconcile, options=ControllerOptions(registry=CollectorRegistry())
    ).watch(informer)
    task = asyncio.create_task(controller.run())
    try:
        await wait_for(lambda: "default/before" in reconciled, changed)
        await api.create(CONFIGMAPS, obj("after", namespace="default"))
        await wait_for(lambda: "default/after" in reconciled, changed)
        await api.delete(CONFIGMAPS, "default", "after")
        await wait_for(lambda: reconciled.count("default/after") == 2, changed)
    finally:
        await controller.stop(timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # Stopped: the handler is gone from the informer, the queue ignores everything.
    assert informer._handlers == ()
    await informer.stop()
