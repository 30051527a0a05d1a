"""Fixtures of the API server suites: a raw JSON HTTP client for the embedded cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from apiserver_helpers import Raw

from kubetrain.cluster.embedded import EmbeddedCluster


@pytest.fixture
async def raw(cluster: EmbeddedCluster) -> AsyncIterator[Raw]:
    """Raw HTTP access to the cluster: (status, parsed body, headers) per call."""
    async with aiohttp.ClientSession() as session:
        yield Raw(cluster.url, session)
