"""Load loops shared by the API server benchmarks: a server in its own process, and HTTP clients
measuring creates/s and status updates/s through aiohttp (one code path, so the in-memory and
--data rows of different benchmark files are comparable)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import orjson

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
_counter = iter(range(10**9))


def unique_name(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


@contextlib.contextmanager
def server_process(code: str, *args: str) -> Iterator[str]:
    """Run ``code`` (a Python program that prints its URL first) in a child process; yield the URL."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


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
