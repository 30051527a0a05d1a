"""Benchmarks: ingest of 50,000 realistic objects, and indexed lister lookups.

Run: .venv/bin/pytest tests/informers/test_bench_informer.py --benchmark-only -s
Targets (brief H5): 50,000 objects ingested in < 10 s; < 2 KB per cached finished job.

Ingest = what an operator start costs: parse LIST pages of 500 with orjson (from in-memory bytes),
transform (finished jobs and pods compacted), store with the namespace, controller-UID and job-name
indexes, and dispatch every object to a handler that records the key (as a work queue would).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest
from informer_samples import finished_job_with_pods

from kubetrain.base.objects import object_key
from kubetrain.informers.event_handlers import EventHandler
from kubetrain.informers.indexers import (
    CONTROLLER_UID_INDEX,
    controller_uid_index,
    label_index,
    label_index_name,
)
from kubetrain.informers.informer import InformerOptions, SharedInformer
from kubetrain.informers.memory import deep_sizeof
from kubetrain.informers.reflector import ReflectorOptions
from kubetrain.informers.resource import PODS, kubeflow
from kubetrain.informers.transforms import compact_finished, compact_when, phase_in

JOBS = 12_500  # x (1 job + 3 pods) = 50,000 objects
NAMESPACES = 50
PAGE = 500
JOB_LABEL = "training.kubeflow.org/job-name"
PYTORCHJOBS = kubeflow("PyTorchJob")


def _pages(objs: list[dict[str, Any]], kind: str) -> list[bytes]:
    pages = []
    for start in range(0, len(objs), PAGE):
        cont = f"c{start + PAGE}" if start + PAGE < len(objs) else ""
        meta = {"resourceVersion": "999999", **({"continue": cont} if cont else {})}
        pages.append(
            orjson.dumps({"kind": kind, "metadata": meta, "items": objs[start : start + PAGE]})
        )
    return pages


@pytest.fixture(scope="module")
def wire() -> dict[str, list[bytes]]:
    jobs, pods = [], []
    for i in range(JOBS):
        job, *job_pods = finished_job_with_pods(f"job-{i}", f"team-{i % NAMESPACES}", rv=10 * i + 1)
        jobs.append(job)
        pods.extend(job_pods)
    return {"jobs": _pages(jobs, "PyTorchJobList"), "pods": _pages(pods, "PodList")}


class PagesTransport:
    """request_json answers the pages in order, parsing each from bytes (as a client would)."""

    def __init__(self, pages: list[bytes]) -> None:
        self._pages = pages
        self._next = 0

    async def request_json(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        body = self._pages[self._next]
        self._next += 1
        parsed: dict[str, Any] = orjson.loads(body)
        return parsed

    def stream_lines(self, path: str, **_: Any) -> Any:
        raise AssertionError("the benchmark stops at sync")


class Enqueue(EventHandler):
    def __init__(self) -> None:
        self.keys: list[str] = []

    def on_add(self, obj: dict[str, Any], is_in_initial_list: bool) -> None:
        self.keys.append(object_key(obj))


def _informer(resource: Any, pages: list[bytes], transform: Any) -> SharedInformer:
    return SharedInformer(
        PagesTransport(pages),  # type: ignore[arg-type]
        resource,
        transform=transform,
        indexers={
            CONTROLLER_UID_INDEX: controller_uid_index,
            label_index_name(JOB_LABEL): label_index(JOB_LABEL),
        },
        options=InformerOptions(reflector=ReflectorOptions(inactivity_timeout=None)),
    )


async def _ingest(wire: dict[str, list[bytes]]) -> tuple[SharedInformer, SharedInformer, int]:
    jobs = _informer(PYTORCHJOBS, wire["jobs"], compact_finished())
    pods = _informer(
        PODS, wire["pods"], compact_when(phase_in("Succeeded", "Failed"), keep=("status.phase",))
    )
    handlers = [Enqueue(), Enqueue()]
    jobs.add_event_handler(handlers[0])
    pods.add_event_handler(handlers[1])
    jobs.start()
    pods.start()
    await jobs.wait_for_sync()
    await pods.wait_for_sync()
    await jobs.stop()
    await pods.stop()
    return jobs, pods, sum(len(h.keys) for h in handlers)


def test_bench_ingest_50k_finished_objects(benchmark: Any, wire: dict[str, list[bytes]]) -> None:
    result: dict[str, Any] = {}

    def run() -> None:
        result["value"] = asyncio.run(_ingest(wire))

    benchmark.pedantic(run, rounds=3, iterations=1)
    jobs, pods, delivered = result["value"]
    assert delivered == 4 * JOBS == len(jobs.store) + len(pods.store)
    per_job = deep_sizeof(*jobs.store.list()) / len(jobs.store)
    per_pod = deep_sizeof(*pods.store.list()) / len(pods.store)
    benchmark.extra_info.update(
        objects=delivered, bytes_per_job=round(per_job), bytes_per_pod=round(per_pod)
    )
    print(
        f"\ningest {delivered} objects: median {benchmark.stats.stats.median:.2f} s; "
        f"bytes per cached finished job {per_job:.0f}, per finished pod {per_pod:.0f}"
    )
    assert per_job < 2048


@pytest.fixture(scope="module")
def synced(wire: dict[str, list[bytes]]) -> tuple[SharedInformer, SharedInformer]:
    jobs, pods, _ = asyncio.run(_ingest(wire))
    return jobs, pods


def test_bench_lister_pods_of_a_job_by_label_index(
    benchmark: Any, synced: tuple[SharedInformer, SharedInformer]
) -> None:
    _, pods = synced
    rng = random.Random(1)
    queries = [(f"team-{i % NAMESPACES}", f"job-{i}") for i in rng.sample(range(JOBS), 1000)]

    def run() -> int:
        return sum(len(pods.lister.list(ns, {JOB_LABEL: name})) for ns, name in queries)

    assert benchmark(run) == 3 * len(queries)


def test_bench_lister_pods_by_controller_uid(
    benchmark: Any, synced: tuple[SharedInformer, SharedInformer]
) -> None:
    jobs, pods = synced
    uids = [j["metadata"]["uid"] for j in jobs.store.list()[:1000]]

    def run() -> int:
        return sum(len(pods.lister.by_index(CONTROLLER_UID_INDEX, uid)) for uid in uids)

    assert benchmark(run) == 3 * len(uids)
