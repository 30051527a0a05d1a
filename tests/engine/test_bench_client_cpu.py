"""The API client's own CPU per request, with the server in another process (a canned HTTP/1.1
answer, nearly free), per transport and with or without the adaptive limit.

Run with ``pytest tests/engine/test_bench_client_cpu.py --benchmark-only``; the figure to compare
is ``extra_info.cpu_us_per_request`` (process CPU of the client alone), next to the wall time.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig

REQUESTS = 2000
CONCURRENCY = 16
_SERVER = r"""
import asyncio, sys
BODY = b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","resourceVersion":"1"}}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY), BODY)
class Canned(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(ANSWER)
async def main():
    server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def canned_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("transport", ["http1", "aiohttp"])
@pytest.mark.parametrize("adaptive", [False, True], ids=["no-limit", "adaptive"])
def test_bench_client_cpu_per_request(
    benchmark: Any, canned_url: str, transport: str, adaptive: bool
) -> None:
    loop = asyncio.new_event_loop()
    limit = {} if adaptive else {"adaptive": None}
    options = ClientOptions(registry=CollectorRegistry(), transport=transport, **limit)  # type: ignore[arg-type]
    client = ApiClient(ClientConfig(server=canned_url, token="t"), options)
    cpu: list[float] = []

    async def batch() -> None:
        async def worker() -> None:
            for _ in range(REQUESTS // CONCURRENCY):
                await client.request_json(
                    "POST", "/api/v1/namespaces/d/configmaps", body={"metadata": {"name": "x"}}
                )

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        cpu.append(time.process_time() - started)

    try:
        benchmark.pedantic(lambda: loop.run_until_complete(batch()), rounds=5, warmup_rounds=1)
    finally:
        loop.run_until_complete(client.close())
        loop.close()
    benchmark.extra_info["cpu_us_per_request"] = round(min(cpu) / REQUESTS * 1e6, 1)
