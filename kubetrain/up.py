"""``kubetrain up``: the whole system on one machine, in one process, with something to watch.

It starts the embedded cluster (API server + simulated nodes), installs the CRDs (Kubeflow
Trainer v2's too, with its built-in ClusterTrainingRuntimes), runs the
operator in-process with its admission webhooks installed (``webhook_install.py``) (one event loop: Ctrl-C stops everything in order, and operator warnings go to
the same terminal), submits the example job of every kind, shows their progress live from
informers (a rich table on a terminal, plain lines otherwise), prints a summary, and then keeps
serving for ``kubectl`` and the browser (the job dashboard, ``kubetrain.dashboard``, over the same
admin kubeconfig, with the operator's metrics; ``--dashboard-bind``) until Ctrl-C. ``--exit-when-done`` exits after the summary instead
(status 0 when every job succeeded, 1 otherwise): what CI and the tests run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar, cast

from rich.console import Console

from kubetrain.base.flags import flag
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster_command import ClusterOptions, add_cluster_flags, new_cluster
from kubetrain.cluster_command import options_from_args as cluster_options_from_args
from kubetrain.dashboard import Dashboard, DashboardOptions
from kubetrain.dashboard.options import DEFAULT_BIND as DASHBOARD_BIND
from kubetrain.dashboard.options import parse_bind
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.logging import configure_logging
from kubetrain.engine.loop import install_signal_handlers
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.operator import Operator, OperatorOptions, client_for
from kubetrain.reconcilers.api.crds import all_crds
from kubetrain.reconcilers.api.webhooks import WebhookService
from kubetrain.reconcilers.trainer.crds import trainer_crds
from kubetrain.reconcilers.trainer.public import PUBLIC_RESOURCES, public_objects
from kubetrain.reconcilers.trainer.resources import CLUSTER_TRAINING_RUNTIMES
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

from .example_jobs import ExampleJob, ExamplesError, load_examples
from .progress import JobTracker, watch_jobs
from .progress_view import LineView, LiveView, ProgressView, summary_table
from .webhook_install import install_webhooks, wait_until_admitting

__all__ = ["UpOptions", "add_up_flags", "run_up", "up"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)

#: Where ``up`` puts the webhook Service and the operator's certificate Secret.
UP_WEBHOOK_SERVICE = WebhookService(namespace="kubeflow")

#: ``--exit-when-done`` status when a job did not succeed; also startup errors.
EXIT_FAILED = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class UpOptions(ClusterOptions):
    """What ``kubetrain up`` runs: the cluster's options (``ClusterOptions``) and its own, each
    declared with its flag (``base.flags``)."""

    exit_when_done: bool = field(
        default=False,
        metadata=flag(
            "--exit-when-done",
            "exit after the summary: status 0 if every job succeeded, 1 otherwise",
            aliases=("--no-wait",),
            show_default=False,
        ),
    )
    examples_dir: Path | None = field(
        default=None,
        metadata=flag(
            "--examples",
            "submit the job manifests in DIR (default: the packaged examples, one per kind)",
            metavar="DIR",
            show_default=False,
        ),
    )
    progress: Literal["auto", "live", "plain"] = field(
        default="auto",
        metadata=flag("--progress", "live table, plain lines, or auto: live on a terminal"),
    )
    metrics_bind_address: str = field(
        default="127.0.0.1:0",
        metadata=flag(
            "--metrics-bind-address",
            "the operator's /metrics address (HOST:PORT; default: %(default)s, a free port)",
        ),
    )
    dashboard_bind: str = field(
        default=DASHBOARD_BIND,
        metadata=flag(
            "--dashboard-bind",
            "the dashboard's address (HOST:PORT; a taken port falls back to a free one; "
            "`off`: no dashboard; default: %(default)s)",
            show_default=False,
        ),
    )
    log_level: str = field(
        default="warning",
        metadata=flag("--log-level", "log level of the operator and the cluster (text on stderr)"),
    )
    operator: OperatorOptions = field(
        default_factory=lambda: OperatorOptions(
            health_probe_bind_address="0", graceful_shutdown_timeout=5.0, log_format="text"
        )
    )
    """The in-process operator's options; ``metrics_bind_address`` and ``log_level`` above
    replace its own."""

    def __post_init__(self) -> None:
        ClusterOptions.__post_init__(self)  # (slots: no zero-argument super() here)
        if self.progress not in ("auto", "live", "plain"):
            raise ValueError(f"--progress must be auto, live or plain, got {self.progress!r}")
        if self.nodes < 1:
            raise ValueError(f"--nodes must be >= 1 for the example jobs to run, got {self.nodes}")


def add_up_flags(p: argparse.ArgumentParser) -> None:
    """Declare the ``kubetrain up`` flags: ``UpOptions``' (the cluster's among them) and the
    simulator's."""
    add_cluster_flags(p, UpOptions)


def options_from_args(args: argparse.Namespace) -> UpOptions:
    """The options of parsed ``add_up_flags`` flags."""
    return cluster_options_from_args(UpOptions, args)


async def run_up(args: argparse.Namespace) -> int:
    """The ``kubetrain up`` subcommand: the exit status (0 after Ctrl-C; see ``up``)."""
    try:
        options = options_from_args(args)
        if options.dashboard_bind != "off":  # before anything starts
            parse_bind(options.dashboard_bind, flag="--dashboard-bind")
    except ValueError as exc:
        print(f"kubetrain up: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    stop = asyncio.Event()
    remove = install_signal_handlers(stop.set)  # a second Ctrl-C exits at once (status 1)
    try:
        return await up(options, stop=stop)
    finally:
        remove()


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now, so log lines go through rich's live display
    (which swaps ``sys.stderr`` while it runs) instead of tearing it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Stopped(Exception):
    """The user asked to stop (Ctrl-C) while ``up`` was waiting for something."""


async def up(options: UpOptions, *, stop: asyncio.Event, out: TextIO | None = None) -> int:
    """Run ``kubetrain up`` until done (``exit_when_done``) or ``stop`` is set.

    Returns 0 after a stop, 1 when the cluster cannot start or the examples cannot be read, and
    with ``exit_when_done`` 0 when every job succeeded, else 1. ``out``: where progress goes
    (default stdout).
    """
    console = _console(out)
    try:
        examples = load_examples(options.examples_dir)
    except (ExamplesError, OSError) as exc:
        console.print(f"kubetrain up: error: {exc}", markup=False, highlight=False)
        return EXIT_FAILED
    configure_logging(level=options.log_level, fmt="text", stream=cast(TextIO, _CurrentStderr()))
    session = _Session(options, console, stop)
    try:
        return await session.run(examples)
    except _Stopped:
        console.print("stopping", markup=False)
        return 0
    except (OSError, RuntimeError, ApiStatusError) as exc:
        log.debug("kubetrain up failed", exc_info=True)
        console.print(f"kubetrain up: error: {exc}", markup=False, highlight=False)
        return EXIT_FAILED
    finally:
        await session.close()


def _console(out: TextIO | None) -> Console:
    file = out if out is not None else sys.stdout
    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        # Logs and pipes have no width: do not squeeze the tables into 80 columns.
        console = Console(file=file, highlight=False, width=max(console.width, 140))
    return console


class _Session:
    """One ``up`` run: owns what it started and stops it in reverse order in ``close``."""

    def __init__(self, options: UpOptions, console: Console, stop: asyncio.Event) -> None:
        self.options = options
        self.console = console
        self.stop = stop
        self.cluster: EmbeddedCluster | None = None
        self.client: ApiClient | None = None
        self.operator: Operator | None = None
        self.operator_client: ApiClient | None = None
        self.operator_task: asyncio.Task[None] | None = None
        self.informers: SharedInformerFactory | None = None
        self.tracker = JobTracker()
        self.webhook_url = ""
        self.dashboard: Dashboard | None = None
        self.dashboard_url = ""

    async def until_stopped(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable`` unless ``stop`` is set first (then cancel it, raise ``_Stopped``);
        also raises when the operator stopped on its own (its failure, or a RuntimeError)."""
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self.stop.wait())
        watched: set[asyncio.Future[Any]] = {task, stopper}
        if self.operator_task is not None:
            watched.add(self.operator_task)
        try:
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.done() and not task.cancelled():
            return task.result()
        if self.stop.is_set():
            raise _Stopped
        assert self.operator_task is not None and self.operator_task.done()
        self.operator_task.result()  # raises the operator's failure
        raise RuntimeError("the operator stopped unexpectedly")

    async def run(self, examples: list[ExampleJob]) -> int:
        opts = self.options
        say = self.say
        if _replace_operator_options(opts).trainjobs == "off":
            skipped = [job for job in examples if job.kind == "TrainJob"]
            examples = [job for job in examples if job.kind != "TrainJob"]
            for job in skipped:
                say(
                    f"TrainJob {job.name} ({job.path.name}) not submitted: the TrainJob "
                    "controller is off (it needs the JobSet controller: --kube-controllers)"
                )
        self.cluster = new_cluster(opts)
        try:
            await self.until_stopped(self.cluster.start())
        except _Stopped:
            raise
        except Exception as exc:  # a locked --data dir, a --port in use
            say(f"kubetrain up: error: cannot start the cluster: {exc}")
            return EXIT_FAILED
        say(f"cluster serving at {self.cluster.url} with {opts.nodes} simulated nodes")
        config = await load_kubeconfig(self.cluster.kubeconfig_path)
        self.client = ApiClient(
            config, ClientOptions(qps=0, registry=new_registry(process_metrics=False))
        )
        await self.until_stopped(self._install_crds())
        metrics_url = await self.until_stopped(self._start_operator())
        say(f"operator running; metrics at {metrics_url}")
        await self.until_stopped(self._start_dashboard(metrics_url))

        self.informers = SharedInformerFactory(self.client)
        watch_jobs(self.tracker, self.informers, sorted({job.kind for job in examples}))
        self.informers.start()
        await self.until_stopped(self.informers.wait_for_sync())

        view = self._view()
        with view:
            await self.until_stopped(self._submit(examples))
            await self.until_stopped(self.tracker.wait_finished())
        self.console.print(summary_table(self.tracker))
        succeeded = self.tracker.all_succeeded()
        if opts.exit_when_done:
            return 0 if succeeded else EXIT_FAILED
        self._print_usage(metrics_url, examples)
        forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.until_stopped(forever)  # raises _Stopped on Ctrl-C
        return 0

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _view(self) -> ProgressView:
        mode = self.options.progress
        if mode == "live" or (mode == "auto" and self.console.is_terminal):
            return LiveView(self.tracker, self.console)
        return LineView(self.tracker, self.console)

    async def _install_crds(self) -> None:
        assert self.client is not None
        # Existing ones are kept from an earlier run with --data. Kubeflow Trainer v2's API
        # (CRDs and built-in ClusterTrainingRuntimes) is installed too.
        for crd in [*all_crds(), *trainer_crds()]:
            await self.client.create_if_absent(CRDS, crd)
        for runtime in builtin_runtimes():
            await self.client.create_if_absent(CLUSTER_TRAINING_RUNTIMES, runtime)
        for obj in public_objects():  # the version the kubeflow SDK reads
            await self.client.create_if_absent(PUBLIC_RESOURCES[obj["kind"]], obj)

    async def _start_operator(self) -> str:
        """Start the operator on its own client; return its metrics URL once its caches synced
        and, unless disabled, the API server consults its admission webhooks."""
        assert self.cluster is not None and self.client is not None
        opts = self.options
        operator_options = _replace_operator_options(opts)
        registry = new_registry()
        self.operator_client = client_for(
            await load_kubeconfig(self.cluster.kubeconfig_path), operator_options, registry
        )
        if operator_options.webhook_server_port:
            # Installed first: its namespace holds the operator's certificate Secret. Nothing is
            # submitted before wait_until_admitting below.
            await install_webhooks(
                self.client,
                port=operator_options.webhook_server_port,
                service=UP_WEBHOOK_SERVICE,
                kinds=operator_options.kinds,
            )
        self.operator = Operator(self.operator_client, operator_options, registry=registry)
        self.operator_task = asyncio.create_task(self.operator.run(), name="operator")
        await self.operator.manager.informers.wait_for_sync()
        if operator_options.webhook_server_port:
            await wait_until_admitting(self.client, kind=operator_options.kinds[0])
            self.webhook_url = f"https://127.0.0.1:{operator_options.webhook_server_port}"
            self.say(
                "admission webhooks installed: defaults are persisted and invalid jobs refused "
                f"({self.webhook_url})"
            )
        port = self.operator.manager.metrics_port
        host = opts.metrics_bind_address.rpartition(":")[0].strip("[]") or "127.0.0.1"
        return f"http://{host}:{port}/metrics"

    async def _start_dashboard(self, metrics_url: str) -> None:
        """The dashboard over ``up``'s client (the cluster's admin kubeconfig, the user's), with
        the operator's metrics; none with ``--dashboard-bind off``."""
        assert self.client is not None
        bind = self.options.dashboard_bind
        if bind == "off":
            return
        try:
            options = DashboardOptions(bind=bind, bind_fallback=True, metrics_url=metrics_url)
        except ValueError as exc:
            self.say(f"dashboard not started: {exc}")
            return
        self.dashboard = Dashboard(self.client, options)
        try:
            self.dashboard_url = await self.dashboard.start()
        except OSError as exc:
            self.say(f"dashboard not started: cannot listen on {bind}: {exc}")
            return
        if self.dashboard.fell_back:
            self.say(f"dashboard at {self.dashboard_url} ({bind} is taken)")
        else:
            self.say(f"dashboard at {self.dashboard_url}")

    async def _submit(self, examples: list[ExampleJob]) -> None:
        assert self.client is not None
        for job in examples:
            self.tracker.expect(job.kind, job.namespace, job.name)
            try:
                await self.client.create(job.resource, job.manifest)
            except ApiStatusError as exc:
                if exc.is_already_exists:
                    # Left from an earlier run (--data): show it as it is.
                    self.tracker.expect(job.kind, job.namespace, job.name, submitted=False)
                    self.say(
                        f"{job.kind} {job.namespace}/{job.name} exists (from an earlier run "
                        "with this --data): not submitted again"
                    )
                else:
                    self.tracker.rejected(
                        job.kind, job.namespace, job.name, f"{job.path.name}: {exc.message or exc}"
                    )

    def _print_usage(self, metrics_url: str, examples: list[ExampleJob]) -> None:
        assert self.cluster is not None
        kubeconfig = self.cluster.kubeconfig_path
        plurals = sorted({job.resource.plural for job in examples})
        first = "pytorchjobs" if "pytorchjobs" in plurals else plurals[0]
        lines = [
            "",
            "kubetrain is serving; press Ctrl-C to stop.",
            f"  API server  {self.cluster.url}",
            f"  kubeconfig  {kubeconfig}",
            f"  try         kubectl --kubeconfig {kubeconfig} get {first}",
            f"              kubectl --kubeconfig {kubeconfig} get pods",
            f"              kubectl --kubeconfig {kubeconfig} get {','.join(plurals)}",
            f"              kubectl --kubeconfig {kubeconfig} get clustertrainingruntimes",
            f"  metrics     {metrics_url}",
        ]
        if self.dashboard_url:
            lines.append(f"  dashboard   {self.dashboard_url}")
        if self.webhook_url:
            lines.append(
                f"  webhooks    {self.webhook_url} (kubectl apply of an invalid job shows why)"
            )
        for line in lines:
            self.say(line)

    async def close(self) -> None:
        """Stop what was started, newest first; every step runs even if an earlier one fails."""
        if self.dashboard is not None:
            await _quietly(self.dashboard.stop(), "dashboard")
        if self.informers is not None:
            await _quietly(self.informers.stop(), "progress informers")
        if self.operator is not None and self.operator_task is not None:
            self.operator.request_stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self.operator_task), 15)
            if not self.operator_task.done():
                self.operator_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.operator_task
            await _quietly(self.operator.close(), "operator event recorders")
        if self.operator_client is not None:
            await _quietly(self.operator_client.close(), "operator client")
        if self.client is not None:
            await _quietly(self.client.close(), "client")
        if self.cluster is not None and self.cluster.url:
            await _quietly(self.cluster.stop(), "cluster")


async def _quietly(awaitable: Awaitable[object], what: str) -> None:
    try:
        await awaitable
    except Exception:
        log.warning("stopping the %s failed", what, exc_info=True)


def _replace_operator_options(opts: UpOptions) -> OperatorOptions:
    """The in-process operator's options: up's metrics address and log level; its webhook
    server, unless disabled (port 0), on a free port, with its Secret in ``kubeflow``."""
    from dataclasses import replace

    webhooks: dict[str, Any] = {}
    if opts.operator.webhook_server_port:
        webhooks = {
            "webhook_server_port": free_port(),
            "webhook_host": "127.0.0.1",
            "operator_namespace": UP_WEBHOOK_SERVICE.namespace,
            "webhook_service_name": UP_WEBHOOK_SERVICE.name,
        }
    trainjobs = opts.operator.trainjobs
    if trainjobs == "auto":  # up installs the Trainer CRDs; JobSet runs with the kube controllers
        trainjobs = "on" if opts.kube_controllers else "off"
    replaced: OperatorOptions = replace(
        opts.operator,
        metrics_bind_address=opts.metrics_bind_address,
        log_level=opts.log_level,
        trainjobs=trainjobs,
        **webhooks,
    )
    return replaced


def free_port() -> int:
    """A TCP port free on every IPv4 address now (the server binds it moments later; the
    bind-and-release race remains, so call it just before the bind). Checked on the wildcard,
    not 127.0.0.1: a server that binds all interfaces (the webhook server's default) also
    collides with a socket that holds the port on another address only."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        port: int = sock.getsockname()[1]
        return port
