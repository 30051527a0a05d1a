"""Fixtures of the engine's tests: ``api``, kubetrain's own API client to the ``cluster``
fixture's server (embedded, or real under --apiserver=real), metrics in a private registry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig


@pytest.fixture
async def api(cluster: EmbeddedCluster) -> AsyncIterator[ApiClient]:
    async with ApiClient(
        await load_kubeconfig(cluster.kubeconfig_path), ClientOptions(registry=CollectorRegistry())
    ) as client:
        yield client
