"""``kubetrain operator``: the job controllers of the enabled kinds on one manager.

``OperatorOptions`` holds every flag (the reference's names and defaults, section 6.1, plus
kubetrain's own); ``add_operator_flags`` declares them on an argparse parser and
``options_from_args`` reads them back. ``Operator`` wires one ``<kind>-controller`` per enabled
kind onto an engine ``Manager`` over one API client; ``run_operator`` is the subcommand.

The operator installs nothing: the CRDs come from ``deploy/crds`` and the webhook configurations
from ``deploy/webhooks`` (``kubetrain up`` installs both). It serves the admission webhooks on
``--webhook-server-port`` and keeps their certificate valid (``engine/webhook``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime
import logging
import socket
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry

from kubetrain.base import flags
from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.flags import add_flags, flag
from kubetrain.engine.client import DEFAULT_ADAPTIVE_LIMIT, ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig, load_config
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.discovery import missing_resources
from kubetrain.engine.events import EventRecorder, EventRecorderOptions
from kubetrain.engine.logging import configure_logging
from kubetrain.engine.manager import (
    LoopRunnable,
    Manager,
    ManagerOptions,
    default_lease_namespace,
    run_manager,
)
from kubetrain.engine.metrics import informer_metrics, new_registry
from kubetrain.engine.metrics_auth import MetricsAuthorizer
from kubetrain.engine.webhook.certs import make_ca, server_ssl_context
from kubetrain.engine.webhook.certwatcher import CertWatcher
from kubetrain.engine.webhook.rotator import (
    MUTATING_CONFIGURATIONS,
    VALIDATING_CONFIGURATIONS,
    CertRotator,
    CertRotatorOptions,
)
from kubetrain.engine.webhook.server import WebhookServer, WebhookServerOptions
from kubetrain.informers.event_handlers import FunctionHandler
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS, kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.kinds import ALL_KINDS, GROUP, MPIJOB, JobKind, kinds_for_schemes
from kubetrain.reconcilers.api.trainer_webhooks import (
    CachedTrainerObjects,
    register_trainer_webhooks,
)
from kubetrain.reconcilers.api.webhooks import (
    MUTATING_CONFIGURATION,
    VALIDATING_CONFIGURATION,
    WebhookService,
    register_job_webhooks,
)
from kubetrain.reconcilers.gang import GangScheduler, gang_scheduler_from_flag
from kubetrain.reconcilers.jobcontroller import (
    JobControllerOptions,
    JobReconciler,
    new_job_controller,
)
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.kinds.base import DomainOptions
from kubetrain.reconcilers.metrics import JobMetrics
from kubetrain.reconcilers.mpiv2.metrics import MPIOperatorMetrics
from kubetrain.reconcilers.mpiv2.reconciler import MPIJobV2Options, MPIJobV2Reconciler
from kubetrain.reconcilers.mpiv2.wiring import MPI_OPERATOR_COMPONENT, new_mpiv2_controller
from kubetrain.reconcilers.presync_jobs import NewJobPreSync
from kubetrain.reconcilers.trainer.plugins.trainjob_status import (
    StatusServerSource,
    StatusServerUnavailable,
)
from kubetrain.reconcilers.trainer.reconciler import TrainJobOptions, TrainJobReconciler
from kubetrain.reconcilers.trainer.resources import (
    CLUSTER_TRAINING_RUNTIMES,
    JOBSETS,
    TRAINING_RUNTIMES,
    TRAINJOBS,
)
from kubetrain.reconcilers.trainer.status_server import ROUTE as TRAINER_STATUS_ROUTE
from kubetrain.reconcilers.trainer.status_server import TrainerStatusServer
from kubetrain.reconcilers.trainer.wiring import TRAINER_COMPONENT, new_trainjob_controller

__all__ = [
    "Operator",
    "OperatorOptions",
    "add_operator_flags",
    "options_from_args",
    "run_operator",
]

log = logging.getLogger(__name__)

#: Exit status of ``--missing-crds skip`` when no enabled kind has its CRD.
EXIT_NO_CRDS = 3
#: What the TrainJob controller needs served (``--trainjobs auto``).
TRAINJOB_RESOURCES = (TRAINJOBS, TRAINING_RUNTIMES, CLUSTER_TRAINING_RUNTIMES, JOBSETS)
#: The CRD both MPI APIs share; its v2beta1 is converted by this operator's webhook server.
MPIJOB_CRD = f"{MPIJOB.plural}.{GROUP}"
#: Exit status of ``--missing-crds skip`` when ``--gang-scheduler-name``'s PodGroup CRD is missing.
EXIT_NO_PODGROUP_CRD = 4

_DOMAIN_DEFAULTS = DomainOptions()


API_CONNECTIONS = 100
"""Pooled connections to the API server; the open watches and the requests in flight share them,
so ``--kube-api-max-inflight`` is at most this."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorOptions:
    """Every ``kubetrain operator`` option, each declared with its flag (``base.flags``);
    defaults are the reference's (section 6.1) unless the help says otherwise."""

    enable_schemes: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "--enable-scheme",
            "enable a job kind: tfjob, pytorchjob, xgboostjob, mpijob, paddlejob or jaxjob "
            "(case-insensitive); default: every kind",
            metavar="KIND",
            show_default=False,
        ),
    )
    controller_threads: int = field(
        default=128,
        metadata=flag(
            "--controller-threads",
            "concurrent reconciles per kind and shard (total: shards x threads). The "
            "reference's default is 1 (blocking Go reconciles); kubetrain's reconciles are "
            "asyncio coroutines, so idle workers are nearly free; the API load is bounded by "
            "--create-concurrency and the client's adaptive limit (--kube-api-max-inflight)",
        ),
    )
    shards: int = field(default=1, metadata=flag("--shards", "work-queue shards per kind"))
    kube_api_qps: float = field(
        default=0.0,
        metadata=flag(
            "--kube-api-qps",
            "a fixed cap on requests per second to the API server; 0 = none: the adaptive "
            "limit (--kube-api-max-inflight) alone. The reference's default is 20",
        ),
    )
    kube_api_burst: int = field(
        default=0,
        metadata=flag(
            "--kube-api-burst", "requests allowed above --kube-api-qps in a burst; 0 = 1.5 x qps"
        ),
    )
    kube_api_max_inflight: int = field(
        default=DEFAULT_ADAPTIVE_LIMIT.maximum,
        metadata=flag(
            "--kube-api-max-inflight",
            "the most API requests in flight at once; below it the adaptive limit grows while "
            "answers are fast, halves on 429 and waits out Retry-After (README, 'API request "
            "rate'); 0 = no adaptive limit",
        ),
    )
    namespace: str | None = field(
        default=None,
        metadata=flag(
            "--namespace",
            "cache and reconcile only this namespace (default: $KUBEFLOW_NAMESPACE, else all)",
            env="KUBEFLOW_NAMESPACE",
            show_default=False,
        ),
    )
    leader_elect: bool = field(
        default=False,
        metadata=flag(
            "--leader-elect",
            "run controllers only while holding a coordination.k8s.io Lease (for several replicas)",
            show_default=False,
        ),
    )
    leader_election_id: str = field(
        default="1ca428e5.training-operator.kubeflow.org",
        metadata=flag("--leader-election-id", "the Lease's name"),
    )
    metrics_bind_address: str = field(
        default=":8080",
        metadata=flag(
            "--metrics-bind-address",
            "address of /metrics, e.g. :8080 or 127.0.0.1:0; 0 disables",
        ),
    )
    health_probe_bind_address: str = field(
        default=":8081",
        metadata=flag("--health-probe-bind-address", "address of /healthz and /readyz; 0 disables"),
    )
    metrics_secure: bool = field(
        default=False,
        metadata=flag(
            "--metrics-secure",
            "serve /metrics over HTTPS (TLS 1.2+) to scrapers the API server authenticates "
            "(TokenReview) and authorizes for get /metrics (SubjectAccessReview); the probes "
            "stay plain HTTP. Off: plain HTTP to anyone, as before",
            negatable=True,
        ),
    )
    metrics_cert_dir: str = field(
        default="",
        metadata=flag(
            "--metrics-cert-dir",
            "with --metrics-secure: directory holding the serving certificate and key (e.g. a "
            "cert-manager Secret), reloaded when they change; default: a self-signed "
            "certificate made in memory at start",
            aliases=("--metrics-cert-path",),
            show_default=False,
        ),
    )
    metrics_cert_name: str = field(
        default="tls.crt",
        metadata=flag("--metrics-cert-name", "certificate file in --metrics-cert-dir"),
    )
    metrics_cert_key: str = field(
        default="tls.key",
        metadata=flag("--metrics-cert-key", "private key file in --metrics-cert-dir"),
    )
    webhook_server_port: int = field(
        default=9443,
        metadata=flag(
            "--webhook-server-port",
            "HTTPS port of the admission webhooks (defaulting and validation of every kind); "
            "0 disables the webhook server",
        ),
    )
    webhook_host: str = field(
        default="",
        metadata=flag(
            "--webhook-host",
            "interface the webhook server binds (default: every interface)",
            show_default=False,
        ),
    )
    webhook_cert_dir: str = field(
        default="",
        metadata=flag(
            "--webhook-cert-dir",
            "directory holding tls.crt and tls.key (e.g. a cert-manager Secret), reloaded when "
            "they change; default: self-managed certificates in the Secret "
            "--webhook-secret-name, with the CA injected into the webhook configurations",
            show_default=False,
        ),
    )
    operator_namespace: str = field(
        default="",
        metadata=flag(
            "--operator-namespace",
            "the operator's own namespace: its webhook Service, certificate Secret and "
            "leader-election Lease (default: $MY_POD_NAMESPACE, else $POD_NAMESPACE, else the "
            "service-account namespace, else default)",
            env="MY_POD_NAMESPACE",
            show_default=False,
        ),
    )
    webhook_service_name: str = field(
        default="kubetrain-webhook-service",
        metadata=flag(
            "--webhook-service-name",
            "the Service in front of the webhook server (the certificate's DNS name)",
        ),
    )
    webhook_secret_name: str = field(
        default="kubetrain-webhook-cert",
        metadata=flag(
            "--webhook-secret-name", "the Secret holding the self-managed CA and certificate"
        ),
    )
    webhook_cert_validity: datetime.timedelta = field(
        default=datetime.timedelta(days=365),
        metadata=flag(
            "--webhook-cert-validity",
            "lifetime of a self-managed serving certificate; renewed when a third is left",
        ),
    )
    webhook_ca_validity: datetime.timedelta = datetime.timedelta(days=3650)
    """Lifetime of the self-managed CA (no flag: tests shorten it to exercise CA rotation)."""
    webhook_ca_propagation_delay: float = 5.0
    """Seconds between injecting a renewed CA and serving a certificate it signed."""
    gang_scheduler_name: str = field(
        default="",
        metadata=flag(
            "--gang-scheduler-name",
            "gang-schedule every job: 'volcano' (any case) keeps a Volcano PodGroup "
            "(scheduling.volcano.sh/v1beta1) per job and creates its pods once Volcano admits "
            "it; any other name keeps a scheduler-plugins PodGroup (scheduling.x-k8s.io/"
            "v1alpha1) and creates the pods at once with that schedulerName. The PodGroup CRD "
            "must be installed (see --missing-crds); empty: off",
            show_default=False,
        ),
    )
    pytorch_init_container_image: str = field(
        default=_DOMAIN_DEFAULTS.pytorch_init_image,
        metadata=flag(
            "--pytorch-init-container-image",
            "image of the init-pytorch container that waits for the master",
        ),
    )
    pytorch_init_container_template_file: str = field(
        default="/etc/config/initContainer.yaml",
        metadata=flag(
            "--pytorch-init-container-template-file",
            "accepted for compatibility; the built-in init container is used",
            show_default=False,
        ),
    )
    pytorch_init_container_max_tries: int = field(
        default=_DOMAIN_DEFAULTS.pytorch_init_max_tries,
        metadata=flag(
            "--pytorch-init-container-max-tries",
            "DNS lookups of the master before init-pytorch gives up",
        ),
    )
    mpi_kubectl_delivery_image: str = field(
        default=_DOMAIN_DEFAULTS.mpi_kubectl_delivery_image,
        metadata=flag(
            "--mpi-kubectl-delivery-image",
            "image of the MPIJob launcher's kubectl-delivery init container",
        ),
    )
    cluster_domain: str = field(
        default="",
        metadata=flag(
            None,
            "suffix of TF_CONFIG and MPIJob v2beta1 hostfile host names",
            env="CUSTOM_CLUSTER_DOMAIN",
        ),
    )
    create_concurrency: int = field(
        default=64,
        metadata=flag(
            "--create-concurrency",
            "pod/service creations and deletions in flight at once per kind, across all its "
            "reconciles",
        ),
    )
    missing_crds: Literal["wait", "skip"] = field(
        default="wait",
        metadata=flag(
            "--missing-crds",
            "when the CRD of an enabled kind is not installed: wait for it (readiness fails "
            "meanwhile) or skip that kind (start the kinds whose CRDs exist). A missing "
            "PodGroup CRD of --gang-scheduler-name is waited for too, or with skip ends the "
            "operator (exit status 4): jobs never run without their gang",
        ),
    )
    trainjobs: Literal["auto", "on", "off"] = field(
        default="auto",
        metadata=flag(
            "--trainjobs",
            "run the TrainJob controller (trainer.kubeflow.org/v1alpha1, over JobSet): auto "
            "when the API server serves TrainJobs, runtimes and JobSets (kubetrain operator "
            "checks at start; an Operator built in Python runs it only with on)",
        ),
    )
    # --- trainer status server (reconcilers/trainer/status_server.py) ---
    trainjob_status_server: bool = field(
        default=True,
        metadata=flag(
            "--trainjob-status-server",
            "serve Kubeflow Trainer's status endpoint (KEP-2779) on the webhook server: "
            "trainers POST their progress with a projected service-account token "
            "(TokenReview) and it becomes the TrainJob's status.trainerStatus; the trainer "
            "job's containers get KUBEFLOW_TRAINER_SERVER_* and the token volume. Needs the "
            "TrainJob controller and the webhook server",
            negatable=True,
        ),
    )
    # --- end trainer status server ---
    create_before_sync: bool = field(
        default=True,
        metadata=flag(
            "--create-before-sync",
            "while the caches sync, create the pods and services of jobs submitted meanwhile "
            "at once (status follows the sync); ignored with --leader-elect",
            negatable=True,
        ),
    )
    graceful_shutdown_timeout: float = 30.0
    """Seconds the manager waits for running reconciles at shutdown."""
    log_format: Literal["json", "text"] = field(
        default="json", metadata=flag("--log-format", "log line format")
    )
    log_level: str = field(
        default="info", metadata=flag("--log-level", "debug, info, warning or error")
    )
    component_host: str = field(default_factory=socket.gethostname)
    """``source.host`` of recorded events."""

    def __post_init__(self) -> None:
        kinds_for_schemes(list(self.enable_schemes))  # raises naming the unknown value
        if self.controller_threads < 1:
            raise ValueError(f"--controller-threads must be >= 1, got {self.controller_threads}")
        if self.shards < 1:
            raise ValueError(f"--shards must be >= 1, got {self.shards}")
        if not 0 <= self.kube_api_max_inflight <= API_CONNECTIONS:
            raise ValueError(
                f"--kube-api-max-inflight must be 0..{API_CONNECTIONS} (the client's pooled "
                f"connections; 0 disables the adaptive limit), got {self.kube_api_max_inflight}"
            )
        if self.kube_api_qps < 0 or self.kube_api_burst < 0:
            raise ValueError(
                "--kube-api-qps and --kube-api-burst must be >= 0 (0: no fixed cap / 1.5 x qps), "
                f"got {self.kube_api_qps} and {self.kube_api_burst}"
            )
        if self.metrics_cert_dir and not self.metrics_secure:
            raise ValueError("--metrics-cert-dir needs --metrics-secure")
        if not 0 <= self.webhook_server_port <= 65535:
            raise ValueError(
                f"--webhook-server-port must be 0..65535 (0 disables), got {self.webhook_server_port}"
            )
        if not datetime.timedelta(0) < self.webhook_cert_validity < self.webhook_ca_validity:
            raise ValueError(
                "--webhook-cert-validity must be > 0 and shorter than the CA's "
                f"{self.webhook_ca_validity}, got {self.webhook_cert_validity}"
            )

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
            gang=gang_scheduler_from_flag(self.gang_scheduler_name),
        )


class Operator:
    """The manager, its job controllers and their event recorders, over one ``ApiClient``.

    ``registry``: where every metric goes (default: a fresh one per operator, so several can run
    in one process); the manager serves it on ``/metrics``. ``events_client``: what the event
    recorders write through (default: ``client``); ``run_operator`` gives them a client of their
    own, as client-go's event broadcaster has, so Events never spend the QPS budget of pod and
    status writes. ``clock``: the one time source of the manager, informers, queues, event
    recorders and job controllers (the clients keep their own); tests pass a ``FakeClock``. Call
    ``close`` after ``run``.
    """

    def __init__(
        self,
        client: ApiClient,
        options: OperatorOptions | None = None,
        *,
        registry: CollectorRegistry | None = None,
        events_client: ApiClient | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.options = opts = options or OperatorOptions()
        self.client = client
        self.registry = registry if registry is not None else new_registry()
        self.metrics_auth: MetricsAuthorizer | None = None
        self.metrics_cert_watcher: CertWatcher | None = None
        metrics_ssl: ssl.SSLContext | None = None
        if opts.metrics_secure and opts.metrics_bind_address not in ("0", ""):
            metrics_ssl = self._metrics_ssl_context(clock)
            self.metrics_auth = MetricsAuthorizer(client, clock=clock)
        self.manager = Manager(
            client,
            ManagerOptions(
                metrics_bind_address=opts.metrics_bind_address,
                health_probe_bind_address=opts.health_probe_bind_address,
                metrics_ssl_context=metrics_ssl,
                metrics_filter=self.metrics_auth.wrap if self.metrics_auth is not None else None,
                leader_elect=opts.leader_elect,
                leader_election_id=opts.leader_election_id,
                leader_election_namespace=opts.operator_namespace,
                graceful_shutdown_timeout=opts.graceful_shutdown_timeout,
                registry=self.registry,
                clock=clock,
            ),
            informers=SharedInformerFactory(
                client,
                namespace=opts.namespace,
                metrics=informer_metrics(self.registry),
                clock=clock,
            ),
        )
        self.metrics = JobMetrics(self.registry)
        self.recorders: list[EventRecorder] = []
        self.reconcilers: dict[str, JobReconciler] = {}
        job_options = JobControllerOptions(
            create_concurrency=opts.create_concurrency, domain=opts.domain, clock=clock
        )
        controller_options = ControllerOptions(
            shards=opts.shards,
            workers_per_shard=opts.controller_threads,
            registry=self.registry,
            clock=clock,
        )
        for kind in opts.kinds:
            recorder = self._recorder(events_client or client, kind.controller_name, clock)
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
        self.trainjobs: TrainJobReconciler | None = None
        if opts.trainjobs == "on":
            self._add_trainjobs(client, events_client or client, controller_options, clock)
        self.mpiv2: MPIJobV2Reconciler | None = None
        if MPIJOB in opts.kinds:
            self._add_mpiv2(client, events_client or client, controller_options, clock)
        if self.metrics_cert_watcher is not None:
            self.manager.add_runnable(
                LoopRunnable("metrics certificate watcher", self.metrics_cert_watcher.run)
            )
        self.webhooks: WebhookServer | None = None
        self.trainer_status: TrainerStatusServer | None = None  # the status route, when served
        self.cert_rotator: CertRotator | None = None
        self.cert_watcher: CertWatcher | None = None
        if opts.webhook_server_port:
            self._add_webhooks(client, clock)
        gang = opts.domain.gang
        if gang is not None:
            log.info(
                "gang scheduling with %s: a %s per job, pods with schedulerName %s",
                "Volcano" if gang.volcano else "scheduler-plugins",
                gang.crd_name,
                gang.scheduler_name,
            )

    def _recorder(self, events_client: ApiClient, component: str, clock: Clock) -> EventRecorder:
        """An event recorder of ``component`` (``source.component``), kept for ``close``."""
        recorder = EventRecorder(
            events_client,
            component,
            self.options.component_host,
            options=EventRecorderOptions(registry=self.registry, clock=clock),
        )
        self.recorders.append(recorder)
        return recorder

    def _add_trainjobs(
        self,
        client: ApiClient,
        events_client: ApiClient,
        controller_options: ControllerOptions,
        clock: Clock,
    ) -> None:
        """The TrainJob controller (Kubeflow Trainer v2's API), building a JobSet per TrainJob."""
        recorder = self._recorder(events_client, TRAINER_COMPONENT, clock)
        controller, self.trainjobs = new_trainjob_controller(
            client=client,
            informers=self.manager.informers,
            recorder=recorder,
            metrics=self.metrics,
            options=TrainJobOptions(clock=clock, status_server=self._status_server_source()),
            controller_options=controller_options,
        )
        self.manager.add(controller)

    def _add_mpiv2(
        self,
        client: ApiClient,
        events_client: ApiClient,
        controller_options: ControllerOptions,
        clock: Clock,
    ) -> None:
        """The controller of MPIJobs written as ``kubeflow.org/v2beta1`` (mpi-operator's
        semantics), beside the v1 MPIJob controller: both APIs share the MPIJob CRD."""
        recorder = self._recorder(events_client, MPI_OPERATOR_COMPONENT, clock)
        controller, self.mpiv2 = new_mpiv2_controller(
            client=client,
            informers=self.manager.informers,
            recorder=recorder,
            metrics=self.metrics,
            mpi_metrics=MPIOperatorMetrics(self.registry),
            options=MPIJobV2Options(
                cluster_domain=self.options.cluster_domain,
                gang=self.options.domain.gang,
                clock=clock,
            ),
            controller_options=controller_options,
        )
        self.manager.add(controller)

    def _metrics_ssl_context(self, clock: Clock) -> ssl.SSLContext:
        """The TLS 1.2+ context of the secure ``/metrics``: the ``--metrics-cert-dir`` pair
        (loaded now, so a bad directory fails the start; then watched for changes), else a
        self-signed certificate for localhost made now, as controller-runtime does (scrapers
        then skip verification: ``insecureSkipVerify`` in the ServiceMonitor)."""
        opts = self.options
        ctx = server_ssl_context()
        if opts.metrics_cert_dir:
            watcher = CertWatcher(
                opts.metrics_cert_dir,
                lambda cert: cert.load_into(ctx),
                cert_name=opts.metrics_cert_name,
                key_name=opts.metrics_cert_key,
                clock=clock,
                purpose="metrics",
            )
            if not watcher.load():
                raise ValueError(
                    f"--metrics-cert-dir: no usable {opts.metrics_cert_name} and "
                    f"{opts.metrics_cert_key} in {opts.metrics_cert_dir} (see the log)"
                )
            self.metrics_cert_watcher = watcher
        else:
            ca = make_ca("kubetrain-metrics-ca", valid_days=365)
            names = tuple(dict.fromkeys(("localhost", socket.gethostname())))
            ca.issue_server_cert(dns_names=names, valid_days=365).load_into(ctx)
            log.info("serving /metrics with a self-signed certificate (no --metrics-cert-dir)")
        return ctx

    # --- trainer status server ---
    def _status_server_source(self) -> StatusServerSource | None:
        """Where trainers find the status server (the webhook Service, port 443) and how the
        CA that verifies it is read; None when it is not served (``--no-trainjob-status-server``,
        no TrainJob controller, or no webhook server)."""
        opts = self.options
        if not (opts.trainjob_status_server and opts.trainjobs == "on"):
            return None
        if not opts.webhook_server_port:
            return None
        return StatusServerSource(
            service_name=opts.webhook_service_name,
            namespace=opts.operator_namespace or default_lease_namespace(),
            port=WebhookService().port,
            ca_bundle=self._status_server_ca,
        )

    async def _status_server_ca(self) -> str:
        """The CA bundle (PEM) of the webhook certificate, read at each TrainJob build (it
        rotates): ``ca.crt`` of ``--webhook-cert-dir``, else what this process's rotator last
        made the configurations trust, else (before its first sync) the self-managed Secret's
        ``ca-bundle.crt`` (the CAs trusted now, the new one first while it rotates)."""
        opts = self.options
        if opts.webhook_cert_dir:
            path = Path(opts.webhook_cert_dir, "ca.crt")
            try:
                return await asyncio.to_thread(path.read_text, encoding="utf-8")
            except OSError as e:
                raise StatusServerUnavailable(
                    f"no CA for the trainer status server: {e} (--webhook-cert-dir must hold "
                    "ca.crt; or turn the server off with --no-trainjob-status-server)"
                ) from e
        # The rotator in this process knows what the API server trusts: no GET per TrainJob.
        rotator = self.cert_rotator
        if rotator is not None and rotator.trusted_bundle:
            return rotator.trusted_bundle.decode("ascii")
        namespace = opts.operator_namespace or default_lease_namespace()
        try:
            secret = await self.client.get(SECRETS, namespace, opts.webhook_secret_name)
        except ApiStatusError as e:
            if not e.is_not_found:
                raise
            secret = {}
        data = secret.get("data") or {}
        encoded = data.get("ca-bundle.crt") or data.get("ca.crt")
        if not encoded:
            raise StatusServerUnavailable(
                f"no CA for the trainer status server yet: Secret {namespace}/"
                f"{opts.webhook_secret_name} has no ca-bundle.crt (the certificate rotator "
                "writes it)"
            )
        return base64.b64decode(encoded).decode()

    # --- end trainer status server ---

    def _add_webhooks(self, client: ApiClient, clock: Clock) -> None:
        """The webhook server with the kinds' handlers, and where its certificate comes from:
        ``--webhook-cert-dir`` files, else a ``CertRotator`` woken whenever one of the two
        webhook configurations changes (a re-install drops the injected ``caBundle``)."""
        opts = self.options
        server = WebhookServer(
            WebhookServerOptions(host=opts.webhook_host, port=opts.webhook_server_port),
            registry=self.registry,
        )
        register_job_webhooks(server, opts.kinds)
        # Trainer v2's webhooks: always served, since the configurations route TrainJobs and
        # runtimes here whether or not this operator runs the TrainJob controller (without
        # it, they read from the API server instead of its caches).
        trainer_reads = CachedTrainerObjects(client=client)
        if self.trainjobs is not None:
            trainer_reads = CachedTrainerObjects(
                client=client,
                training_runtimes=self.trainjobs.training_runtimes,
                cluster_training_runtimes=self.trainjobs.cluster_training_runtimes,
                jobsets=self.trainjobs.jobsets,
            )
        register_trainer_webhooks(server, trainer_reads, clock=clock)
        if self._status_server_source() is not None:  # the trainer status endpoint
            self.trainer_status = TrainerStatusServer(
                client, MetricsAuthorizer(client, clock=clock), clock=clock
            )
            server.register_route(TRAINER_STATUS_ROUTE, self.trainer_status.handle)
        self.webhooks = server
        if opts.webhook_cert_dir:
            watcher = CertWatcher(opts.webhook_cert_dir, server.use_certificate, clock=clock)
            self.cert_watcher = watcher
            keeper = LoopRunnable("webhook certificate watcher", watcher.run)
        else:
            rotator = CertRotator(
                client,
                CertRotatorOptions(
                    namespace=opts.operator_namespace or default_lease_namespace(),
                    secret_name=opts.webhook_secret_name,
                    service_name=opts.webhook_service_name,
                    validating_configurations=(VALIDATING_CONFIGURATION,),
                    mutating_configurations=(MUTATING_CONFIGURATION,),
                    conversion_crds=(MPIJOB_CRD,) if MPIJOB in opts.kinds else (),
                    cert_validity=opts.webhook_cert_validity,
                    ca_validity=opts.webhook_ca_validity,
                    ca_propagation_delay=opts.webhook_ca_propagation_delay,
                ),
                server.use_certificate,
                clock=clock,
            )
            self.cert_rotator = rotator
            wake = FunctionHandler(
                on_add=lambda _obj, _initial: rotator.wake(),
                on_update=lambda _old, _new: rotator.wake(),
            )
            for ref, name in (
                (VALIDATING_CONFIGURATIONS, VALIDATING_CONFIGURATION),
                (MUTATING_CONFIGURATIONS, MUTATING_CONFIGURATION),
            ):
                informer = self.manager.informers.informer_for(
                    ref, field_selector=f"metadata.name={name}", metadata_only=True
                )
                informer.add_event_handler(wake)
            if MPIJOB in opts.kinds:  # a re-installed CRD lost its conversion caBundle
                self.manager.informers.informer_for(
                    CUSTOM_RESOURCE_DEFINITIONS,
                    field_selector=f"metadata.name={MPIJOB_CRD}",
                    metadata_only=True,
                ).add_event_handler(
                    FunctionHandler(
                        on_add=lambda _obj, _initial: rotator.wake_crds(),
                        on_update=lambda _old, _new: rotator.wake_crds(),
                    )
                )
            keeper = LoopRunnable("webhook certificate rotator", rotator.run)
        self.manager.add_runnable(keeper)
        self.manager.add_runnable(server)
        self.manager.add_readyz_check("webhook", server.check_ready)

    @property
    def controllers(self) -> list[Controller]:
        controllers: list[Controller] = self.manager.controllers
        return controllers

    async def run(self) -> None:
        """Run until ``request_stop`` (see ``Manager.run``)."""
        await self.manager.run()

    def wait_for_crds(self, *, interval: float = 2.0) -> None:
        """Before the caches start, wait until every enabled kind's CRD is served (``/readyz``
        says which are missing meanwhile). Call before ``run``."""
        kinds = self.options.kinds

        async def gate() -> None:
            missing = await missing_kinds(self.client, kinds)
            while missing:
                await self.manager.clock.sleep(interval)
                missing = await missing_kinds(self.client, kinds)
            log.info("the CRDs of %s are installed", ", ".join(k.kind for k in kinds))

        self.manager.add_start_gate("the CRDs of " + ", ".join(k.kind for k in kinds), gate)

    def wait_for_podgroup_crd(self, *, interval: float = 2.0) -> None:
        """Before the caches start, wait until the PodGroup CRD of ``--gang-scheduler-name`` is
        served (``/readyz`` names it meanwhile). Call before ``run``; nothing when gang
        scheduling is off."""
        gang = self.options.domain.gang
        if gang is None:
            return

        async def gate() -> None:
            while await missing_resources(self.client, [gang.podgroup_resource]):
                await self.manager.clock.sleep(interval)
            log.info("the CRD %s is installed", gang.crd_name)

        self.manager.add_start_gate(f"the CRD {gang.crd_name}", gate)

    def request_stop(self) -> None:
        self.manager.request_stop()

    async def close(self) -> None:
        """Flush the event recorders (the client is the caller's)."""
        for recorder in self.recorders:
            await recorder.close()


def add_operator_flags(p: argparse.ArgumentParser) -> None:
    """Declare the ``kubetrain operator`` flags: ``--kubeconfig`` and every option's."""
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config)",
    )
    add_flags(p, OperatorOptions)


def options_from_args(args: argparse.Namespace) -> OperatorOptions:
    """The options of parsed ``add_operator_flags`` flags (+ ``$CUSTOM_CLUSTER_DOMAIN``)."""
    return flags.options_from_args(OperatorOptions, args)


def client_for(
    config: ClientConfig,
    options: OperatorOptions,
    registry: CollectorRegistry,
    *,
    name: str = "main",
) -> ApiClient:
    """The operator's one API client: the adaptive in-flight limit up to
    ``--kube-api-max-inflight``, the fixed ``--kube-api-qps`` cap when set, metrics in
    ``registry``."""
    maximum = options.kube_api_max_inflight
    adaptive = (
        replace(
            DEFAULT_ADAPTIVE_LIMIT,
            maximum=maximum,
            initial=min(DEFAULT_ADAPTIVE_LIMIT.initial, maximum),
        )
        if maximum > 0
        else None
    )
    return ApiClient(
        config,
        ClientOptions(
            qps=options.kube_api_qps,
            burst=options.kube_api_burst,
            adaptive=adaptive,
            connection_limit=API_CONNECTIONS,
            registry=registry,
            name=name,
        ),
    )


async def missing_kinds(client: ApiClient, kinds: Iterable[JobKind]) -> list[JobKind]:
    """The ``kinds`` whose CRDs the API server does not serve now."""
    kinds = list(kinds)
    missing = await missing_resources(client, [kubeflow(k.kind) for k in kinds])
    plurals = {ref.plural for ref in missing}
    return [k for k in kinds if k.plural in plurals]


def missing_crds_message(missing: Iterable[JobKind]) -> str:
    """What to tell a user whose cluster lacks the CRDs of ``missing``."""
    names = ", ".join(f"{k.plural}.{GROUP}" for k in missing)
    return (
        f"CRDs not installed: {names}. Install them with `kubectl apply --server-side -f "
        "deploy/crds/` (or the Helm chart), or start only the kinds that exist with "
        "--missing-crds skip or --enable-scheme"
    )


def missing_podgroup_crd_message(gang: GangScheduler) -> str:
    """What to tell a user whose cluster lacks the PodGroup CRD of ``gang``."""
    return (
        f"--gang-scheduler-name={gang.scheduler_name} needs the CRD {gang.crd_name}, which the "
        f"API server does not serve. {gang.installer_hint[0].upper()}{gang.installer_hint[1:]}, "
        "or start the operator without --gang-scheduler-name"
    )


async def podgroup_crd_missing(client: ApiClient, options: OperatorOptions) -> str | None:
    """The message for a missing PodGroup CRD of ``--gang-scheduler-name``; None when gang
    scheduling is off or the CRD is served."""
    gang = options.domain.gang
    if gang is None or not await missing_resources(client, [gang.podgroup_resource]):
        return None
    return missing_podgroup_crd_message(gang)


async def resolve_kinds(
    client: ApiClient, options: OperatorOptions
) -> tuple[OperatorOptions | None, bool]:
    """``(options for the kinds to run, whether to wait for missing CRDs)``, given the CRDs
    installed now: unchanged when all exist; with ``--missing-crds wait``, to wait; with
    ``skip``, only the kinds whose CRDs exist (None when none does). Logs what is missing once."""
    missing = await missing_kinds(client, options.kinds)
    if not missing:
        return options, False
    message = missing_crds_message(missing)
    if options.missing_crds == "wait":
        log.error("%s; waiting for them (readiness fails meanwhile)", message)
        # No job can exist before its CRD: nothing for --create-before-sync to do early.
        return dataclasses.replace(options, create_before_sync=False), True
    present = [k for k in options.kinds if k not in missing]
    if not present:
        log.error("%s; no enabled kind has its CRD: nothing to run", message)
        return None, False
    log.warning("%s; running %s only", message, ", ".join(k.kind for k in present))
    return dataclasses.replace(options, enable_schemes=tuple(k.scheme_name for k in present)), False


async def run_operator(args: argparse.Namespace) -> int:
    """``kubetrain operator``: run until SIGTERM/SIGINT; the process exit status (2, as for
    any bad flag, when the options refuse a value, e.g. ``--controller-threads 0``)."""
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"kubetrain operator: error: {exc}", file=sys.stderr, flush=True)
        return 2
    configure_logging(level=options.log_level, fmt=options.log_format)
    config = await load_config(args.kubeconfig)
    registry = new_registry()
    async with (
        client_for(config, options, registry) as client,
        client_for(config, options, registry, name="events") as events_client,
    ):
        resolved, wait = await resolve_kinds(client, options)
        if resolved is None:
            return EXIT_NO_CRDS
        options = resolved
        if options.trainjobs == "auto":
            trainer_missing = await missing_resources(client, TRAINJOB_RESOURCES)
            if trainer_missing:
                log.info(
                    "no TrainJob controller: the API server does not serve %s",
                    ", ".join(r.group_resource for r in trainer_missing),
                )
            options = replace(options, trainjobs="off" if trainer_missing else "on")
        podgroup_missing = await podgroup_crd_missing(client, options)
        if podgroup_missing is not None:
            if options.missing_crds == "skip":
                log.error("%s; gang scheduling cannot be skipped: exiting", podgroup_missing)
                return EXIT_NO_PODGROUP_CRD
            log.error("%s; waiting for it (readiness fails meanwhile)", podgroup_missing)
        operator = Operator(client, options, registry=registry, events_client=events_client)
        if wait:  # otherwise every CRD was there: no second discovery at start
            operator.wait_for_crds()
        if podgroup_missing is not None:
            operator.wait_for_podgroup_crd()
        log.info("starting operator for %s", ", ".join(k.kind for k in options.kinds or ALL_KINDS))
        try:
            status: int = await run_manager(operator.manager)
            return status
        finally:
            await operator.close()
