"""Shared fixtures: a started embedded cluster and a kubernetes-asyncio client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client, config

from kubetrain.cluster.embedded import EmbeddedCluster


@pytest.fixture
async def cluster() -> AsyncIterator[EmbeddedCluster]:
    """A started EmbeddedCluster (no nodes) on a free local port."""
    async with EmbeddedCluster() as started:
        yield started


@pytest.fixture
async def api_client(cluster: EmbeddedCluster) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio ApiClient configured from the cluster's kubeconfig."""
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=cluster.kubeconfig_path, client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        yield api
