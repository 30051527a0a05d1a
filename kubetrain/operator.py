"""``kubetrain operator``: the job controllers of the enabled kinds on one manager.

``OperatorOptions`` holds every flag (the reference's names and defaults, section 6.1, plus
kubetrain's own); ``add_operator_flags`` declares them on an argparse parser and
``options_from_args`` reads them back. ``Operator`` wires one ``<kind>-controller`` per enabled
kind onto an engine ``Manager`` over one API client; ``run_operator`` is the subcommand.

The operator installs nothing: the CRDs come from ``deploy/crds`` (or
``kubetrain.reconcilers.api.crds.all_crds()`` for ``kubetrain up``).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig, load_config
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.events import EventRecorder, EventRecorderOptions
from kubetrain.engine.logging import configure_logging
from kubetrain.engine.manager import Manager, ManagerOptions, run_manager
from kubetrain.engine.metrics import informer_metrics, new_registry
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.reconcilers.api.kinds import ALL_KINDS, JobKind, kinds_for_schemes
from kubetrain.reconcilers.controller import (
    JobControllerOptions,
    JobReconciler,
    new_job_controller,
)
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.kinds.base import DomainOptions
from kubetrain.reconcilers.metrics import JobMetrics
from kubetrain.reconcilers.presync_jobs import NewJobPreSync

__all__ = [
    "Operator",
    "OperatorOptions",
    "add_operator_flags",
    "options_from_args",
    "run_operator",
]

log = logging.getLogger(__name__)

_DOMAIN_DEFAULTS = DomainOptions()


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorOptions:
    """Every ``kubetrain operator`` flag; defaults are the reference's (section 6.1)."""

    enable_schemes: tuple[str, ...] = ()
    """``--enable-scheme`` values (case-insensitive); empty: every kind."""
    controller_threads: int = 128
    """``--controller-threads``: concurrent reconciles per kind and shard (total per kind:
    ``shards * controller_threads``). The reference defaults to 1 because its reconciles are
    blocking goroutines; ours are asyncio coroutines, so a worker waiting for the API server
    costs a few KB and no CPU. With 1, every reconcile waits behind the HTTP round trips of the
    one before it (a 500-job burst: Succeeded p99 5.6 s after the last pod). The API load is
    bounded by ``--create-concurrency`` and ``--kube-api-qps``, not by this number."""
    shards: int = 1
    """``--shards``: work-queue shards per kind (kubetrain)."""
    kube_api_qps: float = 20.0
    kube_api_burst: int = 30
    namespace: str | None = None
    """``--namespace``: cache and reconcile only this namespace; None: all. The flag defaults
    to ``$KUBEFLOW_NAMESPACE``."""
    leader_elect: bool = False
    leader_election_id: str = "1ca428e5.training-operator.kubeflow.org"
    metrics_bind_address: str = ":8080"
    health_probe_bind_address: str = ":8081"
    webhook_server_port: int = 9443
    """Accepted for compatibility; the webhook server is not served by this command yet."""
    gang_scheduler_name: str = ""
    """Accepted; gang scheduling is not implemented yet (a warning is logged when set)."""
    pytorch_init_container_image: str = _DOMAIN_DEFAULTS.pytorch_init_image
    pytorch_init_container_template_file: str = "/etc/config/initContainer.yaml"
    """Accepted; the init container is built from the image and max-tries flags."""
    pytorch_init_container_max_tries: int = _DOMAIN_DEFAULTS.pytorch_init_max_tries
    mpi_kubectl_delivery_image: str = _DOMAIN_DEFAULTS.mpi_kubectl_delivery_image
    cluster_domain: str = ""
    """``$CUSTOM_CLUSTER_DOMAIN``: suffix of TF_CONFIG host names."""
    create_concurrency: int = 64
    """``--create-concurrency``: pod/service creations and deletions in flight at once per kind,
    across all its reconciles (kubetrain; ``JobControllerOptions.create_concurrency``)."""
    create_before_sync: bool = True
    """``--create-before-sync`` (kubetrain): while the caches sync after a start, jobs created
    from then on get their pods and services at once (``reconcilers.presync_jobs``) instead of
    after the whole sync; status follows the sync. Never with ``--leader-elect``."""
    graceful_shutdown_timeout: float = 30.0
    log_format: Literal["json", "text"] = "json"
    log_level: str = "info"
    component_host: str = field(default_factory=socket.gethostname)
    """``source.host`` of recorded events."""

    def __post_init__(self) -> None:
        kinds_for_schemes(list(self.enable_schemes))  # raises naming the unknown value
        if self.controller_threads < 1:
            raise ValueError(f"--controller-threads must be >= 1, got {self.controller_threads}")
        if self.shards < 1:
            raise ValueError(f"--shards must be >= 1, got {self.shards}")

    @property
    def kinds(self) -> tuple[JobKind, ...]:
        kinds: tuple[JobKind, ...] = kinds_for_schemes(list(self.enable_schemes))
        return kinds

    @property
    def domain(self) -> DomainOptions:
        return DomainOptions(
            cluster_domain=self.cluster_domain,
            pytorch_init_image=self.pytorch_init_container_image,
            pytorch_init_max_tries=self.pytorch_init_container_max_tries,
            mpi_kubectl_delivery_image=self.mpi_kubectl_delivery_image,
        )


class Operator:
    """The manager, its job controllers and their event recorders, over one ``ApiClient``.

    ``registry``: where every metric goes (default: a fresh one per operator, so several can run
    in one process); the manager serves it on ``/metrics``. ``events_client``: what the event
    recorders write through (default: ``client``); ``run_operator`` gives them a client of their
    own, as client-go's event broadcaster has, so Events never spend the QPS budget of pod and
    status writes. Call ``close`` after ``run``.
    """

    def __init__(
        self,
        client: ApiClient,
        options: OperatorOptions | None = None,
        *,
        registry: CollectorRegistry | None = None,
        events_client: ApiClient | None = None,
    ) -> None:
        self.options = opts = options or OperatorOptions()
        self.client = client
        self.registry = registry if registry is not None else new_registry()
        self.manager = Manager(
            client,
            ManagerOptions(
                metrics_bind_address=opts.metrics_bind_address,
                health_probe_bind_address=opts.health_probe_bind_address,
                leader_elect=opts.leader_elect,
                leader_election_id=opts.leader_election_id,
                graceful_shutdown_timeout=opts.graceful_shutdown_timeout,
                registry=self.registry,
            ),
            informers=SharedInformerFactory(
                client, namespace=opts.namespace, metrics=informer_metrics(self.registry)
            ),
        )
        self.metrics = JobMetrics(self.registry)
        self.recorders: list[EventRecorder] = []
        self.reconcilers: dict[str, JobReconciler] = {}
        job_options = JobControllerOptions(
            create_concurrency=opts.create_concurrency, domain=opts.domain
        )
        controller_options = ControllerOptions(
            shards=opts.shards, workers_per_shard=opts.controller_threads, registry=self.registry
        )
        for kind in opts.kinds:
            recorder = EventRecorder(
                events_client or client,
                kind.controller_name,
                opts.component_host,
                options=EventRecorderOptions(registry=self.registry),
            )
            self.recorders.append(recorder)
            controller, reconciler = new_job_controller(
                ADAPTERS[kind.kind],
                client=client,
                informers=self.manager.informers,
                recorder=recorder,
                metrics=self.metrics,
                options=job_options,
                controller_options=controller_options,
            )
            self.manager.add(controller)
            self.reconcilers[kind.kind] = reconciler
            if opts.create_before_sync:
                self.manager.add_presync(
                    NewJobPreSync(reconciler, client=client, namespace=opts.namespace)
                )
        if opts.gang_scheduler_name:
            log.warning(
                "--gang-scheduler-name=%s accepted but gang scheduling is not implemented yet; "
                "pods are created without PodGroups",
                opts.gang_scheduler_name,
            )

    @property
    def controllers(self) -> list[Controller]:
        controllers: list[Controller] = self.manager.controllers
        return controllers

    async def run(self) -> None:
        """Run until ``request_stop`` (see ``Manager.run``)."""
        await self.manager.run()

    def request_stop(self) -> None:
        self.manager.request_stop()

    async def close(self) -> None:
        """Flush the event recorders (the client is the caller's)."""
        for recorder in self.recorders:
            await recorder.close()


def add_operator_flags(p: argparse.ArgumentParser) -> None:
    """Declare the ``kubetrain operator`` flags (reference names and defaults)."""
    d = OperatorOptions(component_host="")
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config)",
    )
    p.add_argument(
        "--enable-scheme",
        action="append",
        default=[],
        metavar="KIND",
        help="enable a job kind (repeatable; tfjob, pytorchjob, xgboostjob, mpijob, "
        "paddlejob, jaxjob; default: all)",
    )
    p.add_argument(
        "--controller-threads",
        type=int,
        default=d.controller_threads,
        help="concurrent reconciles per kind and shard (total: shards x threads). The "
        "reference's default is 1 (blocking Go reconciles); kubetrain's reconciles are asyncio "
        "coroutines, so idle workers are nearly free and the default is %(default)s; the API "
        "load is bounded by --create-concurrency and --kube-api-qps",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=d.shards,
        help="work-queue shards per kind (default: %(default)s)",
    )
    p.add_argument(
        "--kube-api-qps",
        type=float,
        default=d.kube_api_qps,
        help="client-side requests per second to the API server, 0 = unlimited (default: %(default)s)",
    )
    p.add_argument(
        "--kube-api-burst",
        type=int,
        default=d.kube_api_burst,
        help="requests allowed above --kube-api-qps in a burst (default: %(default)s)",
    )
    p.add_argument(
        "--namespace",
        default=os.environ.get("KUBEFLOW_NAMESPACE") or None,
        help="watch only this namespace (default: $KUBEFLOW_NAMESPACE, else all)",
    )
    p.add_argument(
        "--leader-elect",
        action="store_true",
        default=d.leader_elect,
        help="run controllers only while holding a coordination.k8s.io Lease (for several replicas)",
    )
    p.add_argument(
        "--leader-election-id",
        default=d.leader_election_id,
        help="the Lease's name (default: %(default)s)",
    )
    p.add_argument(
        "--metrics-bind-address",
        default=d.metrics_bind_address,
        help="address of /metrics, e.g. :8080 or 127.0.0.1:0; 0 disables (default: %(default)s)",
    )
    p.add_argument(
        "--health-probe-bind-address",
        default=d.health_probe_bind_address,
        help="address of /healthz and /readyz; 0 disables (default: %(default)s)",
    )
    p.add_argument(
        "--webhook-server-port",
        type=int,
        default=d.webhook_server_port,
        help="accepted for compatibility; the validating webhook server is not implemented yet",
    )
    p.add_argument(
        "--gang-scheduler-name",
        default=d.gang_scheduler_name,
        help="accepted; gang scheduling is not implemented yet",
    )
    p.add_argument(
        "--pytorch-init-container-image",
        default=d.pytorch_init_container_image,
        help="image of the init-pytorch container that waits for the master (default: %(default)s)",
    )
    p.add_argument(
        "--pytorch-init-container-template-file",
        default=d.pytorch_init_container_template_file,
        help="accepted for compatibility; the built-in init container is used",
    )
    p.add_argument(
        "--pytorch-init-container-max-tries",
        type=int,
        default=d.pytorch_init_container_max_tries,
        help="DNS lookups of the master before init-pytorch gives up (default: %(default)s)",
    )
    p.add_argument(
        "--mpi-kubectl-delivery-image",
        default=d.mpi_kubectl_delivery_image,
        help="image of the MPIJob launcher's kubectl-delivery init container (default: %(default)s)",
    )
    p.add_argument(
        "--create-concurrency",
        type=int,
        default=d.create_concurrency,
        help="pod/service creations and deletions in flight at once per kind, across all its "
        "reconciles (default: %(default)s)",
    )
    p.add_argument(
        "--create-before-sync",
        action=argparse.BooleanOptionalAction,
        default=d.create_before_sync,
        help="while the caches sync, create the pods and services of jobs submitted meanwhile "
        "at once; ignored with --leader-elect (default: %(default)s)",
    )
    p.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=d.log_format,
        help="log line format (default: %(default)s)",
    )
    p.add_argument(
        "--log-level",
        default=d.log_level,
        help="debug, info, warning or error (default: %(default)s)",
    )


def options_from_args(args: argparse.Namespace) -> OperatorOptions:
    """The options of parsed ``add_operator_flags`` flags (+ ``$CUSTOM_CLUSTER_DOMAIN``)."""
    return OperatorOptions(
        enable_schemes=tuple(args.enable_scheme or ()),
        controller_threads=args.controller_threads,
        shards=args.shards,
        kube_api_qps=args.kube_api_qps,
        kube_api_burst=args.kube_api_burst,
        namespace=args.namespace or None,
        leader_elect=args.leader_elect,
        leader_election_id=args.leader_election_id,
        metrics_bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
        webhook_server_port=args.webhook_server_port,
        gang_scheduler_name=args.gang_scheduler_name,
        pytorch_init_container_image=args.pytorch_init_container_image,
        pytorch_init_container_template_file=args.pytorch_init_container_template_file,
        pytorch_init_container_max_tries=args.pytorch_init_container_max_tries,
        mpi_kubectl_delivery_image=args.mpi_kubectl_delivery_image,
        cluster_domain=os.environ.get("CUSTOM_CLUSTER_DOMAIN", ""),
        create_concurrency=args.create_concurrency,
        create_before_sync=args.create_before_sync,
        log_format=args.log_format,
        log_level=args.log_level,
    )


def client_for(
    config: ClientConfig, options: OperatorOptions, registry: CollectorRegistry
) -> ApiClient:
    """The operator's one API client (QPS/burst from the flags, metrics in ``registry``)."""
    return ApiClient(
        config,
        ClientOptions(qps=options.kube_api_qps, burst=options.kube_api_burst, registry=registry),
    )


async def run_operator(args: argparse.Namespace) -> int:
    """``kubetrain operator``: run until SIGTERM/SIGINT; the process exit status."""
    options = options_from_args(args)
    configure_logging(level=options.log_level, fmt=options.log_format)
    config = load_config(args.kubeconfig)
    registry = new_registry()
    async with (
        client_for(config, options, registry) as client,
        client_for(config, options, registry) as events_client,
    ):
        operator = Operator(client, options, registry=registry, events_client=events_client)
        log.info("starting operator for %s", ", ".join(k.kind for k in options.kinds or ALL_KINDS))
        try:
            status: int = await run_manager(operator.manager)
            return status
        finally:
            await operator.close()
