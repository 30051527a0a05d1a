"""Benchmark: Python's garbage collector in an API server process holding 250,000 objects.

A full collection scans every container object the process holds; the API server keeps each
stored object as its serialized bytes (``store.Record``), which the collector does not scan,
so the pause should stay flat as the store grows. The server runs in a process of its own (as
``kubetrain cluster`` does; a pytest process alone holds enough objects for a 40 ms full
collection). Not timed: filling its store, like the operator's jobs, through the write path
(50,000 owners, a ConfigMap here, with 4 pods each). Timed: ``gc.collect()`` in that process (a
full collection: what CPython runs each time its oldest generation grew by a quarter, and what
``kubetrain.gctuning`` runs over everything after each thaw), asked for over a pipe.
``extra_info``: the longest collection of each generation during the fill (``gc.callbacks``),
a full collection before the fill, the objects the collector tracks and resident memory.
Run: ``.venv/bin/pytest tests/cluster/apiserver/test_bench_collector_pause.py --benchmark-only``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

OBJECTS = 250_000

SERVER = r"""
import asyncio, gc, json, sys, time
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.rest_common import WriteOptions
from kubetrain.cluster.apiserver.server import ApiServer

OBJECTS, PODS_PER_OWNER = int(sys.argv[1]), 4
longest = [0.0, 0.0, 0.0]
started = [0.0]


def pauses(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        gen = info["generation"]
        longest[gen] = max(longest[gen], time.perf_counter() - started[0])


def pod(i, owner):
    job = owner["metadata"]["name"]
    return {
        "metadata": {
            "name": f"{job}-worker-{i}",
            "labels": {
                "training.kubeflow.org/job-name": job,
                "training.kubeflow.org/replica-type": "worker",
                "training.kubeflow.org/replica-index": str(i),
            },
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": job,
                "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": {
            "containers": [{
                "name": "pytorch",
                "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
                "command": ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"],
                "env": [{"name": "MASTER_ADDR", "value": f"{job}-master-0"},
                        {"name": "RANK", "value": str(i + 1)}],
                "ports": [{"name": "pytorchjob-port", "containerPort": 23456}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            }],
            "restartPolicy": "OnFailure",
        },
    }


async def fill(server):
    await server.bootstrap()
    server.gc.start()
    cm = server.registry.lookup("", "v1", "configmaps")
    pods = server.registry.lookup("", "v1", "pods")
    for j in range(OBJECTS // (PODS_PER_OWNER + 1)):
        body = {"metadata": {"name": f"job-{j}"}, "data": {"config": "x" * 200}}
        owner = await server.rest.create(cm, "default", body, WriteOptions())
        for i in range(PODS_PER_OWNER):
            await server.rest.create(pods, "default", pod(i, owner), WriteOptions())
        if j % 100 == 0:
            await asyncio.sleep(0)  # let the GC workers run, as between requests
    await server.gc.wait_idle()
    await server.gc.stop()


def rss_mib():
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


server = ApiServer(ApiServerOptions())
gc.collect()
start = time.perf_counter()
gc.collect()
empty = time.perf_counter() - start
gc.callbacks.append(pauses)
asyncio.run(fill(server))
gc.callbacks.remove(pauses)
stored = server.store.count(("", "pods")) + server.store.count(("", "configmaps"))
print(json.dumps({
    "stored_objects": stored,
    "full_collection_ms_before_filling": round(empty * 1000, 1),
    "longest_pause_ms_by_generation_during_fill": [round(p * 1000, 1) for p in longest],
    "tracked_objects": len(gc.get_objects()),
    "rss_mib": round(rss_mib()),
}), flush=True)
for line in sys.stdin:  # one full collection per line, its duration back
    start = time.perf_counter()
    gc.collect()
    print(time.perf_counter() - start, flush=True)
"""


def test_full_collection_with_250k_stored_objects(benchmark: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(OBJECTS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    try:
        info = json.loads(stdout.readline())
        assert info["stored_objects"] >= OBJECTS
        longest: list[float] = []

        def collect() -> None:
            stdin.write("collect\n")
            stdin.flush()
            longest.append(float(stdout.readline()))

        benchmark.pedantic(collect, rounds=5, iterations=1)
        benchmark.extra_info.update(info)
        benchmark.extra_info["full_collection_ms_in_server_max"] = round(max(longest) * 1000, 1)
    finally:
        proc.stdin.close()
        proc.wait(30)
