"""Load loops shared by the API server benchmarks: a server in its own process, and HTTP clients
measuring creates/s and status updates/s through aiohttp (one code path, so the in-memory and
--data rows of different benchmark files are comparable), plus the server's CPU time (the
client shares the machine's cores, so CPU per request is the steadier figure)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
_counter = iter(range(10**9))
_pids: dict[str, int] = {}  # url -> pid of the server process serving it


def unique_name(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


@contextlib.contextmanager
def server_process(code: str, *args: str) -> Iterator[str]:
    """Run ``code`` (a Python program that prints its URL first) in a child process; yield the URL."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    _pids[url] = proc.pid
    try:
        yield url
    finally:
        _pids.pop(url, None)
        proc.terminate()
        proc.wait(10)


def server_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) the server process serving ``url`` has used so far."""
    with open(f"/proc/{_pids[url]}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pod(name: str) -> dict[str, Any]:
    """A pod body of realistic size (~1 KiB): labels, a container with command, env, ports."""
    return {
        "metadata": {
            "name": name,
            "labels": {
                "training.kubeflow.org/job-name": name.rsplit("-", 1)[0],
                "training.kubeflow.org/replica-type": "worker",
                "training.kubeflow.org/replica-index": name.rsplit("-", 1)[-1],
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "pytorch",
                    "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
                    "command": ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"],
                    "env": [
                        {"name": "MASTER_PORT", "value": "23456"},
                        {"name": "MASTER_ADDR", "value": "job-master-0"},
                        {"name": "WORLD_SIZE", "value": "5"},
                        {"name": "PYTHONUNBUFFERED", "value": "1"},
                    ],
                    "ports": [{"name": "pytorchjob-port", "containerPort": 23456}],
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                }
            ],
            "restartPolicy": "OnFailure",
        },
    }


async def pod_creates(url: str, path: str, count: int, concurrency: int) -> float:
    """Pod creates (``pod`` bodies) per second under ``path`` with ``concurrency`` in flight."""
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(concurrency)
        headers = {"Content-Type": "application/json"}

        async def one() -> None:
            body = orjson.dumps(pod(unique_name("job") + "-0"))
            async with sem, session.post(url + path, data=body, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - start)


async def lean_creates(url: str, path: str, bodies: list[bytes], concurrency: int) -> float:
    """Creates per second of ``bodies`` under ``path``, sent over ``concurrency`` keep-alive
    connections, each one request after another, on bare asyncio streams.

    The requests are built before the clock starts and the answers are only checked for their
    status and framed by Content-Length, so the client spends a few microseconds per request
    where aiohttp spends about 150: the rate is then the server's, not the client's, on a machine
    whose other core runs the client. Every answer must be 201.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    requests = [
        b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(), len(body), body)
        for body in bodies
    ]
    shares = [requests[i::concurrency] for i in range(concurrency)]
    streams = [await asyncio.open_connection(host, int(port)) for _ in shares]

    async def one_connection(
        share: list[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for request in share:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"201":
                raise AssertionError(head + await reader.read(2000))
            length = _content_length(head)
            await reader.readexactly(length)

    start = time.perf_counter()
    try:
        await asyncio.gather(
            *(one_connection(share, r, w) for share, (r, w) in zip(shares, streams, strict=True))
        )
        return len(bodies) / (time.perf_counter() - start)
    finally:
        for _, writer in streams:
            writer.close()


def _content_length(head: bytes) -> int:
    at = head.lower().index(b"\r\ncontent-length:") + 17
    return int(head[at : head.index(b"\r\n", at)])


async def creates(url: str, count: int, concurrency: int, *, value: str = "v") -> float:
    """ConfigMap creates per second with ``concurrency`` requests in flight."""
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(concurrency)
        headers = {"Content-Type": "application/json"}

        async def one() -> None:
            body = orjson.dumps({"metadata": {"name": unique_name("cm")}, "data": {"k": value}})
            async with sem, session.post(url + CM, data=body, headers=headers) as resp:
                assert resp.status == 201
                await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - start)


async def status_updates(url: str, count: int) -> float:
    """Sequential merge patches of one pod's ``/status`` per second."""
    async with aiohttp.ClientSession() as session:
        name = unique_name("pod")
        pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
        async with session.post(url + PODS, json=pod) as resp:
            assert resp.status == 201
        headers = {"Content-Type": "application/merge-patch+json"}
        start = time.perf_counter()
        for i in range(count):
            body = orjson.dumps({"status": {"phase": "Running", "message": str(i)}})
            async with session.patch(
                f"{url}{PODS}/{name}/status", data=body, headers=headers
            ) as resp:
                assert resp.status == 200
                await resp.read()
        return count / (time.perf_counter() - start)
