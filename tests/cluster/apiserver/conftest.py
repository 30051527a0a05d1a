"""Fixtures of the API server suites: a raw JSON HTTP client for the cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from apiserver_helpers import Raw

from kubetrain.cluster.embedded import EmbeddedCluster


@pytest.fixture
async def raw(cluster: EmbeddedCluster) -> AsyncIterator[Raw]:
    """Raw HTTP access to the cluster: (status, parsed body, headers) per call.

    Under --apiserver=real the cluster serves HTTPS (``ssl_context`` trusts its CA) and wants
    its admin bearer ``token``; the embedded server needs neither."""
    ssl_context = getattr(cluster, "ssl_context", None)
    token = getattr(cluster, "token", None)
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        yield Raw(cluster.url, session)
