"""The API server stamps objects with its injected clock's wall time (``ApiServerOptions.clock``),
so a test can run the server in fake time like the operator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.informers.resource import CONFIGMAPS, PODS

pytestmark = pytest.mark.embedded_only(reason="injects the embedded server's clock")


async def test_creation_and_deletion_times_follow_the_injected_clock() -> None:
    clock = FakeClock(wall_start=datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))
    async with EmbeddedCluster(options=ApiServerOptions(clock=clock)) as cluster:
        config = ClientConfig(server=cluster.url)
        async with ApiClient(config, ClientOptions(registry=CollectorRegistry())) as client:
            cm = await client.create(
                CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"}}
            )
            assert cm["metadata"]["creationTimestamp"] == "2031-05-06T07:08:09Z"
            clock.advance(3600)
            pod = {
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}], "nodeName": "n"},
            }
            await client.create(PODS, pod)
            deleting = await client.delete(PODS, "default", "p")
            assert deleting["metadata"]["creationTimestamp"] == "2031-05-06T08:08:09Z"
            # A bound pod is deleted gracefully: its deletionTimestamp is now + 30 s.
            assert deleting["metadata"]["deletionTimestamp"] == "2031-05-06T08:08:39Z"
