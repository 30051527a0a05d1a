"""``KubeControllerManager``: the Job and TTL-after-finished controllers on one API client and
one informer factory, started together and stopped together.

Start order: the informers first, and their first LIST waited for (a Job synced before its pods
are cached would get its pods created twice), then the controllers' workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig, load_kubeconfig
from kubetrain.informers.factory import SharedInformerFactory

from .job import JobController, JobControllerOptions
from .ttlafterfinished import TtlAfterFinishedController

__all__ = ["KubeControllerManager", "KubeControllerManagerOptions", "start_for_cluster"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeControllerManagerOptions:
    job: JobControllerOptions = field(default_factory=JobControllerOptions)
    ttl_after_finished: bool = True
    qps: float = 0.0
    """Client-side request limit (0: none), as the node simulator's client."""


class KubeControllerManager:
    def __init__(
        self,
        client: ApiClient,
        options: KubeControllerManagerOptions | None = None,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.options = opts = options or KubeControllerManagerOptions()
        self.client = client
        self._owns_client = False
        registry = CollectorRegistry()
        self.factory = SharedInformerFactory(client, clock=clock)
        job_options = opts.job
        if job_options.clock is not clock:
            job_options = replace(job_options, clock=clock)
        self.jobs = JobController(client, self.factory, job_options)
        self.ttl = (
            TtlAfterFinishedController(client, self.jobs.jobs, clock=clock, registry=registry)
            if opts.ttl_after_finished
            else None
        )

    @classmethod
    def for_config(
        cls,
        config: ClientConfig,
        options: KubeControllerManagerOptions | None = None,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> KubeControllerManager:
        opts = options or KubeControllerManagerOptions()
        client = ApiClient(
            config,
            ClientOptions(
                qps=opts.qps,
                adaptive=None,
                registry=CollectorRegistry(),
                user_agent="kubetrain-kcm/0.1",
            ),
        )
        kcm = cls(client, opts, clock=clock)
        kcm._owns_client = True
        return kcm

    async def start(self, *, sync_timeout: float | None = 60.0) -> None:
        self.factory.start()
        if not await self.factory.wait_for_sync(sync_timeout):
            raise TimeoutError(f"kcm: the informers did not sync within {sync_timeout} s")
        self.jobs.start()
        if self.ttl is not None:
            self.ttl.start()

    async def stop(self) -> None:
        if self.ttl is not None:
            await self.ttl.stop()
        await self.jobs.stop()
        await self.factory.stop()
        if self._owns_client:
            await self.client.close()

    async def __aenter__(self) -> KubeControllerManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


async def start_for_cluster(cluster: Any) -> KubeControllerManager:
    """Start the controllers for an ``EmbeddedCluster`` (its kubeconfig; the server's clock when
    it has one); the caller awaits ``stop()``."""
    server_options = getattr(getattr(cluster, "api", None), "options", None)
    clock: Clock = getattr(server_options, "clock", None) or REAL_CLOCK
    kcm = KubeControllerManager.for_config(
        await load_kubeconfig(cluster.kubeconfig_path), clock=clock
    )
    try:
        await kcm.start()
    except BaseException:
        await kcm.stop()
        raise
    return kcm
