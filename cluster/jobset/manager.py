"""Running JobSet next to an embedded cluster: its own client and informer factory, as the real
controller is its own process; ``embedded.py`` starts it under ``kube_controllers`` once the
CRD is served and the admission plugins are in place (``install``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.factory import SharedInformerFactory

from .controller import JobSetController, JobSetControllerOptions

__all__ = ["JobSetManager", "start_for_cluster"]


class JobSetManager:
    def __init__(self, client: ApiClient, *, clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.factory = SharedInformerFactory(client, clock=clock)
        self.controller = JobSetController(
            client, self.factory, JobSetControllerOptions(clock=clock)
        )

    async def start(self, *, sync_timeout: float = 60.0) -> None:
        self.factory.start()
        if not await self.factory.wait_for_sync(sync_timeout):
            raise TimeoutError(f"jobset: the informers did not sync within {sync_timeout} s")
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.factory.stop()
        await self.client.close()


async def start_for_cluster(cluster: Any) -> JobSetManager:
    """Start the controller for an ``EmbeddedCluster`` (its kubeconfig and clock); the caller
    awaits ``stop()``."""
    server_options = getattr(getattr(cluster, "api", None), "options", None)
    clock: Clock = getattr(server_options, "clock", None) or REAL_CLOCK
    client = ApiClient(
        await load_kubeconfig(cluster.kubeconfig_path),
        ClientOptions(
            qps=0, adaptive=None, registry=CollectorRegistry(), user_agent="kubetrain-jobset/0.1"
        ),
    )
    manager = JobSetManager(client, clock=clock)
    try:
        await manager.start()
    except BaseException:
        await manager.stop()
        raise
    return manager
