"""SharedInformer, Lister and SharedInformerFactory over the scripted transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from informer_fakes import (
    FakeTransport,
    RecordingClock,
    RecordingHandler,
    Stream,
    gone,
    line,
    page,
    pod,
    settle,
)
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import label_index, label_index_name
from kubetrain.informers.informer import InformerOptions, SharedInformer
from kubetrain.informers.lister import Lister
from kubetrain.informers.metrics import InformerMetrics
from kubetrain.informers.reflector import ReflectorOptions
from kubetrain.informers.resource import NODES, PODS, SERVICES
from kubetrain.informers.store import Store

QUIET = InformerOptions(reflector=ReflectorOptions(inactivity_timeout=None))


@pytest.fixture
async def stoppers() -> AsyncIterator[list[Any]]:
    items: list[Any] = []
    yield items
    for item in items:
        await item.stop()


def make(transport: FakeTransport, clock: RecordingClock, **kw: Any) -> SharedInformer:
    kw.setdefault("options", QUIET)
    return SharedInformer(transport, PODS, clock=clock, **kw)


async def test_handlers_see_initial_list_then_live_events_with_the_cache_updated(
    stoppers: list[Any],
) -> None:
    transport, clock = FakeTransport(), RecordingClock()
    transport.lists.append(page([pod("a", "1", managed=True), pod("b", "2")], "10"))
    gate = asyncio.Event()
    transport.watches.append(
        Stream(
            [
                line("ADDED", pod("c", "11")),
                line("MODIFIED", pod("a", "12")),
                line("DELETED", pod("b", "13")),
            ],
            end="hang",
            gate=gate,
        )
    )
    informer = make(transport, clock)
    stoppers.append(informer)
    handler = RecordingHandler()
    seen_in_cache: list[bool] = []

    class Checking(RecordingHandler):
        def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
            # The store already holds the new state when handlers run.
            seen_in_cache.append(informer.store.get("default/" + obj["metadata"]["name"]) is obj)

    informer.add_event_handler(handler)
    informer.add_event_handler(Checking())
    assert not informer.has_synced
    informer.start()
    assert await informer.wait_for_sync(timeout=5)
    assert sorted(handler.events) == [("add", "default/a", True), ("add", "default/b", True)]
    assert "managedFields" not in informer.store.get("default/a")["metadata"]  # type: ignore[index]
    gate.set()
    await settle()
    assert handler.events[2:] == [
        ("add", "default/c", False),
        ("update", "default/a", "12"),
        ("delete", "default/b"),
    ]
    assert sorted(informer.store.keys()) == ["default/a", "default/c"]
    assert seen_in_cache and all(seen_in_cache)


async def test_late_handler_gets_the_cache_replayed(stoppers: list[Any]) -> None:
    transport, clock = FakeTransport(), RecordingClock()
    transport.lists.append(page([pod("a", "1"), pod("b", "2")], "10"))
    informer = make(transport, clock)
    stoppers.append(informer)
    informer.start()
    await informer.wait_for_sync(timeout=5)
    late = RecordingHandler()
    informer.add_event_handler(late)
    assert sorted(late.events) == [("add", "default/a", True), ("add", "default/b", True)]


async def test_a_failing_handler_is_logged_and_does_not_stop_others(
    stoppers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    transport, clock = FakeTransport(), RecordingClock()
    transport.lists.append(page([pod("a", "1")], "10"))
    transport.watches.append(Stream([line("MODIFIED", pod("a", "2"))], end="hang"))

    class Broken(RecordingHandler):
        def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
            raise RuntimeError("bug in handler")

        def on_update(self, old: Any, new: Any) -> None:
            raise RuntimeError("bug in handler")

    informer = make(transport, clock)
    stoppers.append(informer)
    good = RecordingHandler()
    informer.add_event_handler(Broken())
    informer.add_event_handler(good)
    with caplog.at_level(logging.ERROR):
        informer.start()
        await settle()
    assert good.events == [("add", "default/a", True), ("update", "default/a", "2")]
    assert informer.has_synced
    assert sum("bug in handler" in r.exc_text for r in caplog.records if r.exc_text) == 2
    assert any("on_update(default/a)" in r.getMessage() for r in caplog.records)


async def test_relist_after_410_delivers_updates_resyncs_and_tombstones(
    stoppers: list[Any],
) -> None:
    transport, clock = FakeTransport(), RecordingClock()
    registry = CollectorRegistry()
    transport.lists.append(page([pod("same", "1"), pod("changed", "2"), pod("gone", "3")], "10"))
    transport.watches.append(gone())
    transport.lists.append(page([pod("same", "1"), pod("changed", "20"), pod("new", "21")], "30"))
    transport.watches.append(Stream([], end="hang"))
    informer = make(transport, clock, metrics=InformerMetrics(registry))
    stoppers.append(informer)
    handler = informer.add_event_handler(RecordingHandler())
    informer.start()
    await clock.step()  # backoff before the relist
    assert isinstance(handler, RecordingHandler)
    assert sorted(handler.events[3:]) == [
        ("add", "default/new", False),
        ("resync", "default/same", "1"),
        ("tombstone", "default/gone"),
        ("update", "default/changed", "20"),
    ]
    assert registry.get_sample_value("kubetrain_informer_objects", {"resource": "pods"}) == 3


async def test_resync_delivers_update_of_obj_to_itself_every_period(stoppers: list[Any]) -> None:
    transport, clock = FakeTransport(), RecordingClock()
    transport.lists.append(page([pod("a", "1")], "10"))
    options = InformerOptions(
        reflector=ReflectorOptions(inactivity_timeout=None), resync_period=60, resync_jitter=0.0
    )
    informer = make(transport, clock, options=options)
    stoppers.append(informer)
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    informer.start()
    await settle()
    assert await clock.step() == 60
    assert await clock.step() == 60
    assert handler.events == [
        ("add", "default/a", True),
        ("resync", "default/a", "1"),
        ("resync", "default/a", "1"),
    ]


async def test_wait_for_sync_times_out_when_the_list_never_answers(stoppers: list[Any]) -> None:
    informer = make(FakeTransport(), RecordingClock())
    stoppers.append(informer)
    informer.start()
    assert await informer.wait_for_sync(timeout=0.01) is False


async def test_a_stopped_informer_refuses_to_restart() -> None:
    informer = make(FakeTransport(), RecordingClock())
    informer.start()
    await informer.stop()
    with pytest.raises(RuntimeError, match="create a new informer"):
        informer.start()


# -- Lister ---------------------------------------------------------------------------------

JOB = "training.kubeflow.org/job-name"


def lister_over(*objs: Any, **indexers: Any) -> Lister:
    store = Store(indexers=indexers or None)
    for obj in objs:
        store.upsert(obj)
    return Lister(store)


def test_lister_gets_and_lists_by_namespace_and_selectors() -> None:
    lister = lister_over(
        pod("a", "1", namespace="n1", labels={JOB: "x", "role": "w"}),
        pod("b", "1", namespace="n1", labels={JOB: "y"}),
        pod("a", "1", namespace="n2", labels={JOB: "x"}),
    )
    assert lister.get("n2", "a")["metadata"]["namespace"] == "n2"  # type: ignore[index]
    assert lister.get("n3", "a") is None
    assert len(lister.list()) == 3
    assert [o["metadata"]["name"] for o in lister.list("n1", {JOB: "x"})] == ["a"]
    assert len(lister.list(None, {JOB: "x"})) == 2
    assert len(lister.list(None, {JOB: "x", "role": "w"})) == 1
    assert len(lister.list("n1", lambda o: o["metadata"]["name"] == "b")) == 1


def test_lister_uses_a_label_index_for_equality_selectors() -> None:
    calls: list[str] = []
    base = label_index(JOB)

    def counting(obj: Any) -> list[str]:
        calls.append(obj["metadata"]["name"])
        return base(obj)

    lister = lister_over(
        pod("a", "1", namespace="n1", labels={JOB: "x"}),
        pod("b", "1", namespace="n1", labels={JOB: "y"}),
        pod("c", "1", namespace="n2", labels={JOB: "x"}),
        **{label_index_name(JOB): counting},
    )

    store = lister._store  # the lister must not walk the namespace when an index answers
    listed: list[str] = []
    original = store.list
    store.list = lambda: listed.append("scan") or original()  # type: ignore[method-assign]
    assert [o["metadata"]["name"] for o in lister.list("n1", {JOB: "x"})] == ["a"]
    assert [o["metadata"]["name"] for o in lister.list("n2", {JOB: "x"})] == ["c"]
    assert listed == []


# -- Factory ----------------------------------------------------------------------------------


async def test_factory_shares_one_informer_per_resource_scope_and_selectors(
    stoppers: list[Any],
) -> None:
    factory = SharedInformerFactory(FakeTransport(), namespace="team-a", clock=FakeClock())
    stoppers.append(factory)
    one = factory.informer_for(PODS)
    assert factory.informer_for(PODS, namespace="team-a") is one
    assert factory.informer_for(PODS, namespace=None) is not one
    assert factory.informer_for(PODS, label_selector="a=b") is not one
    assert factory.informer_for(SERVICES) is not one
    assert factory.informer_for(PODS, metadata_only=True) is not one
    assert one.namespace == "team-a"
    assert factory.informer_for(NODES).namespace is None  # cluster-scoped ignores the default
    with pytest.raises(ValueError, match="cluster-scoped"):
        factory.informer_for(NODES, namespace="x")


async def test_factory_rejects_a_conflicting_transform_and_merges_indexers(
    stoppers: list[Any],
) -> None:
    factory = SharedInformerFactory(FakeTransport(), clock=FakeClock())
    stoppers.append(factory)

    def mine(o: Any) -> Any:
        return o

    informer = factory.informer_for(PODS, transform=mine)
    assert factory.informer_for(PODS) is informer
    assert factory.informer_for(PODS, transform=mine) is informer
    with pytest.raises(ValueError, match="transform"):
        factory.informer_for(PODS, transform=lambda o: o)
    factory.informer_for(PODS, indexers={label_index_name(JOB): label_index(JOB)})
    assert label_index_name(JOB) in informer.store.indexer_names


async def test_factory_metadata_only_informer_caches_only_metadata_and_kept_paths(
    stoppers: list[Any],
) -> None:
    transport = FakeTransport()
    transport.lists.append(page([pod("a", "1", phase="Succeeded", managed=True)], "10"))
    factory = SharedInformerFactory(transport, clock=FakeClock(), options=QUIET)
    stoppers.append(factory)
    informer = factory.informer_for(PODS, metadata_only=True, keep=["status.phase"])
    factory.start()
    assert await factory.wait_for_sync(timeout=5)
    cached = informer.lister.get("default", "a")
    assert cached is not None
    assert set(cached) == {"apiVersion", "kind", "metadata", "status"}
    assert cached["status"] == {"phase": "Succeeded"}
    assert "managedFields" not in cached["metadata"]


async def test_informers_created_after_factory_start_start_at_once(stoppers: list[Any]) -> None:
    transport = FakeTransport()
    transport.lists.append(page([], "1"))
    factory = SharedInformerFactory(transport, clock=FakeClock(), options=QUIET)
    stoppers.append(factory)
    factory.start()
    informer = factory.informer_for(SERVICES)
    assert informer.is_started
    assert await factory.wait_for_sync(timeout=5)
    assert factory.unsynced() == []
    assert transport.paths[0] == "/api/v1/services"
