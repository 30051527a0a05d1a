"""Shared fixtures: a started cluster (embedded, or real under --apiserver=real) and a
kubernetes-asyncio client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conformance.apiserver_switch import (  # the --apiserver=embedded|real switch and markers
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    real_cluster,
    real_control_plane,
    selected_apiserver,
)
from kubernetes_asyncio import client, config

from kubetrain.cluster.embedded import EmbeddedCluster

__all__ = [
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "real_control_plane",
]


@pytest.fixture
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A started EmbeddedCluster (no nodes) on a free local port; under --apiserver=real a
    RealClusterHandle (``.url``, ``.kubeconfig_path``, ``.ssl_context``) on the session's real
    control plane, emptied of what the test created afterwards."""
    if selected_apiserver(request.config) == "real":
        plane = request.getfixturevalue("real_control_plane")
        async with real_cluster(plane) as handle:
            yield handle
        return
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
