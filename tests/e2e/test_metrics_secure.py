"""``kubetrain operator --metrics-secure`` as a process against the embedded cluster with bearer
tokens: /metrics over HTTPS (TLS 1.2+ only, the self-signed certificate made at start) for a
scraper whose token the API server's TokenReview authenticates and whose SubjectAccessReview it
allows; 401 without a token or with an unknown one, 403 for a user the authorizer denies; the
probes stay plain HTTP."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tlsprobe import negotiated_version, old_tls_client

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.up import free_port

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed"),
]

TOKENS = {"operator-token": "operator", "scraper-token": "prometheus", "mallory-token": "mallory"}


def deny_mallory(spec: Mapping[str, Any]) -> tuple[bool, str]:
    return spec.get("user") != "mallory", ""


async def test_secure_metrics_are_authenticated_authorized_and_tls12_only() -> None:
    options = ApiServerOptions(tokens=dict(TOKENS), authorizer=deny_mallory)
    async with EmbeddedCluster(options=options) as cluster:  # kubeconfig: the first token
        metrics_port, health_port = free_port(), free_port()
        proc = await asyncio.create_subprocess_exec(
            KUBETRAIN,
            "operator",
            "--kubeconfig",
            cluster.kubeconfig_path,
            "--enable-scheme",
            "pytorchjob",
            "--missing-crds",
            "wait",
            "--metrics-secure",
            f"--metrics-bind-address=127.0.0.1:{metrics_port}",
            f"--health-probe-bind-address=127.0.0.1:{health_port}",
            "--webhook-server-port=0",
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE  # the self-signed certificate, as documented
            url = f"https://127.0.0.1:{metrics_port}/metrics"
            connector = aiohttp.TCPConnector(ssl=insecure)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def scrape(token: str | None) -> int:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    async with session.get(url, headers=headers) as resp:
                        await resp.read()
                        return resp.status

                for _ in range(300):
                    try:
                        status = await scrape("scraper-token")
                        break
                    except aiohttp.ClientConnectionError:
                        if proc.returncode is not None:
                            break
                        await asyncio.sleep(0.1)
                else:
                    status = 0
                assert status == 200, await _stderr(proc)
                assert await scrape(None) == 401
                assert await scrape("unknown-token") == 401
                assert await scrape("mallory-token") == 403
                # the probes are plain HTTP, without a token
                async with session.get(f"http://127.0.0.1:{health_port}/healthz") as resp:
                    assert resp.status == 200
            assert await negotiated_version(metrics_port, insecure) in ("TLSv1.2", "TLSv1.3")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await negotiated_version(metrics_port, old_tls_client())
            # the reviews went through the operator's own credential
            assert cluster.api.authn is not None
            assert cluster.api.authn.authenticated.get("operator", 0) > 0
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)


async def _stderr(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.terminate()
    assert proc.stderr is not None
    return (await proc.stderr.read()).decode(errors="replace")[-3000:]
