"""``Manager``: starts the operator's parts in order, runs controllers only while leading, and
stops everything in reverse within a deadline.

Start order (controller-runtime's runnable groups):

0. pre-sync work (``add_presync``, only without leader election): opened first, then run
   until the caches have synced (``presync.PreSyncWork``);
1. HTTP servers: ``/metrics`` and ``/healthz`` + ``/readyz`` (before any cache fills, so probes
   and scrapes always find the ports open);
1b. runnables (``add_runnable``): the webhook server and its certificate keeper, on every
   replica (the API server calls any ready pod behind the webhook Service); then the start
   gates (``add_start_gate``: e.g. until the CRDs are installed), ``/readyz`` failing meanwhile;
2. informer caches: start every informer of ``manager.informers`` and wait until all have synced
   (``/readyz`` fails until then);
3. leader election (when ``leader_elect``): wait until this replica holds the Lease;
4. controllers: run while leading. Caches are warm before leadership, so a new leader starts
   reconciling at once.

Stop (``request_stop()``, a signal, or cancelling ``run``) goes in reverse: controllers drain
within ``graceful_shutdown_timeout`` (then in-flight reconciles are cancelled), the Lease is
released (``leader_election_release_on_cancel``), caches stop, runnables stop (webhooks keep
answering while controllers drain), servers stop.

Losing leadership is fatal, as in controller-runtime: controllers are cancelled at once (no
drain: another replica may already lead), everything stops, and ``run`` raises
``LeaderElectionLost`` so the process exits non-zero and restarts as a candidate.
``run_manager`` wires signals and turns the outcome into an exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock, RealClock
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.transport import Transport

from .controller import CacheSyncTimeoutError, Controller
from .health import (
    Checker,
    Handler,
    HealthCheckCollector,
    HealthChecks,
    HttpServer,
    Route,
    metrics_route,
    parse_bind_address,
    ping,
)
from .leaderelection import LeaderElectionConfig, LeaderElector
from .loop import install_signal_handlers
from .metrics import informer_metrics
from .presync import PreSyncWork

__all__ = [
    "LeaderElectionLost",
    "LoopRunnable",
    "Manager",
    "ManagerOptions",
    "Runnable",
    "run_manager",
]

log = logging.getLogger(__name__)

#: Where a pod finds its namespace (the service-account mount).
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


#: Seconds a pre-sync work may take to open before it is skipped (the servers wait for it).
PRESYNC_OPEN_TIMEOUT = 5.0


class Runnable(Protocol):
    """Something that runs beside the controllers on every replica, leader or not: a webhook
    server, a certificate keeper. Started after the metrics and probe servers and before the
    caches sync; stopped after the controllers and informers, before those servers."""

    async def start(self) -> None:
        """Begin; return once running (raise ``OSError`` and the like to fail the start)."""
        ...

    async def stop(self) -> None:
        """End (idempotent)."""
        ...


class LoopRunnable:
    """A ``Runnable`` around a coroutine function that loops until cancelled (a certificate
    keeper's ``run``): ``start`` starts it as a task, ``stop`` cancels it. Ending early is a bug:
    it is logged."""

    def __init__(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._loop = loop
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            log.error("%s stopped unexpectedly", self.name, exc_info=task.exception())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:
        return f"LoopRunnable({self.name!r})"


class LeaderElectionLost(RuntimeError):
    """This replica stopped leading; the process must exit (non-zero) and start over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerOptions:
    """How the manager runs; defaults are controller-runtime's and the reference flags'."""

    metrics_bind_address: str = ":8080"
    """``--metrics-bind-address``: ``HOST:PORT``, ``:PORT``, ``:0`` (free port) or ``0`` (off)."""
    health_probe_bind_address: str = ":8081"
    """``--health-probe-bind-address`` for ``/healthz`` and ``/readyz`` (same forms). When equal
    to ``metrics_bind_address``, one server serves all three."""
    leader_elect: bool = False
    """``--leader-elect``: run controllers only while holding the Lease."""
    leader_election_id: str = "kubetrain-leader"
    """The Lease's name."""
    leader_election_namespace: str = ""
    """The Lease's namespace; "" means ``$POD_NAMESPACE``, else the service-account namespace,
    else ``default``."""
    leader_election_identity: str = ""
    """This replica's holder identity; "" means ``<hostname>_<uuid4>`` (unique per process)."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    leader_election_release_on_cancel: bool = True
    """Release the Lease on a graceful stop (after controllers drained) so a successor takes
    over at once instead of after ``lease_duration``."""
    graceful_shutdown_timeout: float | None = 30.0
    """Seconds controllers get to drain on stop; then in-flight reconciles are cancelled.
    None: wait as long as it takes; 0: cancel at once."""
    cache_sync_timeout: float = 120.0
    """Seconds to wait for the informers' first sync before ``run`` fails."""
    clock: Clock = REAL_CLOCK
    """The operator's one time source: leader election runs on it, the informer factory the
    manager builds gets it, and every controller added must run on it (``ControllerOptions.clock``;
    ``add`` checks), so one ``FakeClock`` drives the whole operator in tests."""
    metrics_ssl_context: ssl.SSLContext | None = None
    """``--metrics-secure``: serve ``/metrics`` over HTTPS with this context (TLS 1.2+, e.g.
    ``webhook.certs.server_ssl_context`` holding the certificate), on a listener of its own: the
    probes stay plain HTTP, so it cannot share ``health_probe_bind_address``."""
    metrics_filter: Callable[[Handler], Handler] | None = None
    """Wraps the ``/metrics`` handler, e.g. ``metrics_auth.MetricsAuthorizer.wrap`` (scrapers
    authenticated and authorized by the API server); None: served to anyone."""
    registry: CollectorRegistry | None = None
    """The registry ``/metrics`` serves, and where the elector (and, by default, the informers)
    register, and where the health checks are exported (``kubetrain_health_check``; not on the
    global registry); None: prometheus-client's global registry. Controllers take theirs from
    ``ControllerOptions.registry``: pass the same one."""

    def __post_init__(self) -> None:
        metrics = parse_bind_address(self.metrics_bind_address)
        health = parse_bind_address(self.health_probe_bind_address)
        if (
            self.metrics_ssl_context is not None
            and metrics is not None
            and metrics == health
            and metrics[1] != 0
        ):
            raise ValueError(
                "secure metrics are served over HTTPS and the health probes over plain HTTP: "
                f"--metrics-bind-address and --health-probe-bind-address must differ, both are "
                f"{self.metrics_bind_address}"
            )
        if self.graceful_shutdown_timeout is not None and self.graceful_shutdown_timeout < 0:
            raise ValueError(
                "ManagerOptions.graceful_shutdown_timeout must be >= 0 seconds or None, got "
                f"{self.graceful_shutdown_timeout}"
            )
        if self.cache_sync_timeout <= 0:
            raise ValueError(
                f"ManagerOptions.cache_sync_timeout must be > 0, got {self.cache_sync_timeout}"
            )
        if self.leader_elect and not self.leader_election_id:
            raise ValueError("ManagerOptions.leader_election_id must be set with leader_elect")


def _same_clock(a: Clock, b: Clock) -> bool:
    """True when ``a`` and ``b`` are one time source (any two ``RealClock``s are)."""
    return a is b or (isinstance(a, RealClock) and isinstance(b, RealClock))


def default_lease_namespace() -> str:
    """``$POD_NAMESPACE``, else the service-account namespace, else ``default``."""
    env = os.environ.get("POD_NAMESPACE", "").strip()
    if env:
        return env
    with contextlib.suppress(OSError):
        mounted = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        if mounted:
            return mounted
    return "default"


class Manager:
    """Runs informers, controllers, leader election and the HTTP endpoints of one operator.

    Usage::

        manager = Manager(api_client, ManagerOptions(leader_elect=True))
        jobs = manager.informers.informer_for(kubeflow("PyTorchJob"))
        manager.add(Controller("pytorchjob", reconcile).watch(jobs))
        await manager.run()  # until request_stop(); raises LeaderElectionLost

    In fake time: ``ManagerOptions(clock=fake)``, and controllers built with
    ``ControllerOptions(clock=manager.clock)``; the manager's informers already use it.
    """

    def __init__(
        self,
        client: Transport,
        options: ManagerOptions | None = None,
        *,
        informers: SharedInformerFactory | None = None,
    ) -> None:
        """``informers``: the factory controllers take informers from, on ``options.clock``;
        default: a new one on ``client`` and ``options.clock``, metrics in ``options.registry``."""
        self.client = client
        self.options = options if options is not None else ManagerOptions()
        if informers is not None and not _same_clock(informers.clock, self.options.clock):
            raise ValueError(
                "Manager: the informer factory runs on another clock than ManagerOptions.clock; "
                "build it with SharedInformerFactory(clock=options.clock)"
            )
        self.informers = (
            informers
            if informers is not None
            else SharedInformerFactory(
                client,
                metrics=informer_metrics(self.options.registry),
                clock=self.options.clock,
            )
        )
        self.healthz = HealthChecks("/healthz")
        self.readyz = HealthChecks("/readyz")
        self.healthz.add("ping", ping)
        self.readyz.add("informers", self._check_caches)
        if self.options.registry is not None:  # the operator's own registry: one manager each
            self.options.registry.register(HealthCheckCollector(self.healthz, self.readyz))
        self._controllers: list[Controller] = []
        self._presync: list[PreSyncWork] = []
        self._servers: list[HttpServer] = []
        self._runnables: list[Runnable] = []
        self._started_runnables: list[Runnable] = []
        self._gates: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
        self._waiting_on: str | None = None
        self._caches_synced = False
        self._stop = asyncio.Event()
        self._ran = False
        self.elector: LeaderElector | None = None
        if self.options.leader_elect:
            self.healthz.add("leader-election", self._check_leader_election)

    # -- wiring ----------------------------------------------------------------------------------

    def add(self, controller: Controller) -> Controller:
        """Run ``controller`` while leading. Call before ``run``; returns it."""
        if self._ran:
            raise RuntimeError("Manager.add: add controllers before run()")
        if any(c.name == controller.name for c in self._controllers):
            raise ValueError(f"Manager already has a controller named {controller.name!r}")
        if not _same_clock(controller.options.clock, self.options.clock):
            raise ValueError(
                f"Manager.add: controller {controller.name!r} runs on another clock than "
                "ManagerOptions.clock; build it with ControllerOptions(clock=manager.clock)"
            )
        self._controllers.append(controller)
        return controller

    def add_presync(self, work: PreSyncWork) -> None:
        """Run ``work`` while the caches sync (see ``presync``); ignored with leader election.
        Call before ``run``."""
        if self._ran:
            raise RuntimeError("Manager.add_presync: add pre-sync work before run()")
        self._presync.append(work)

    def add_runnable(self, runnable: Runnable) -> None:
        """Run ``runnable`` on this replica whether or not it leads (see ``Runnable``); they
        start in the order added and stop in reverse. Call before ``run``."""
        if self._ran:
            raise RuntimeError("Manager.add_runnable: add runnables before run()")
        self._runnables.append(runnable)

    def add_start_gate(self, what: str, gate: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Await ``gate()`` after the servers and runnables started and before the informers
        start (e.g. until the CRDs are installed); ``/readyz`` fails with ``waiting for <what>``
        meanwhile. Gates run in the order added. Call before ``run``."""
        if self._ran:
            raise RuntimeError("Manager.add_start_gate: add gates before run()")
        self._gates.append((what, gate))

    def add_healthz_check(self, name: str, check: Checker) -> None:
        """A liveness check (``/healthz``): failing it makes kubelet restart the pod."""
        self.healthz.add(name, check)

    def add_readyz_check(self, name: str, check: Checker) -> None:
        """A readiness check (``/readyz``): failing it takes the pod out of Service endpoints."""
        self.readyz.add(name, check)

    @property
    def clock(self) -> Clock:
        """``options.clock``: what controllers, informers and recorders of this manager use."""
        return self.options.clock

    @property
    def controllers(self) -> list[Controller]:
        return list(self._controllers)

    @property
    def metrics_port(self) -> int:
        """The bound ``/metrics`` port (after ``run`` started the servers)."""
        return self._port_of("/metrics")

    @property
    def health_port(self) -> int:
        """The bound ``/healthz`` + ``/readyz`` port (after ``run`` started the servers)."""
        return self._port_of("/healthz")

    @property
    def is_leader(self) -> bool:
        """True while controllers may run: leading, or leader election is off."""
        return self.elector.is_leader if self.elector is not None else self._caches_synced

    def request_stop(self) -> None:
        """Ask ``run`` to stop gracefully. Synchronous and idempotent (signal-handler safe)."""
        self._stop.set()

    # -- run -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start in order, run until ``request_stop``, then stop in reverse (module docstring).

        Raises ``LeaderElectionLost`` when leadership was lost, ``CacheSyncTimeoutError`` when the
        caches do not sync in time, ``OSError`` when a port cannot be bound, and re-raises a
        controller's unexpected failure (after stopping everything).
        """
        if self._ran:
            raise RuntimeError("Manager.run: a manager runs once; create a new one")
        self._ran = True
        opts = self.options
        controller_tasks: dict[asyncio.Task[None], Controller] = {}
        election: asyncio.Task[None] | None = None
        stopper = asyncio.create_task(self._stop.wait(), name="manager stop")
        synced = asyncio.Event()
        presync: list[asyncio.Task[None]] = []
        lost = False
        failure: BaseException | None = None
        try:
            presync = await self._start_presync(synced)
            await self._start_servers()
            for runnable in self._runnables:
                await runnable.start()
                self._started_runnables.append(runnable)
            for what, gate in self._gates:
                self._waiting_on = what
                if not await self._wait(gate(), stopper):
                    return
            self._waiting_on = None
            self.informers.start()
            if not await self._wait(self._sync_caches(), stopper):
                return
            self._caches_synced = True
            synced.set()
            log.info("caches synced")

            if opts.leader_elect:
                self.elector = self._make_elector()
                election = asyncio.create_task(self.elector.run(), name="leader election")
                leading = asyncio.create_task(self.elector.wait_until_leading())
                try:
                    await asyncio.wait({election, leading, stopper}, return_when="FIRST_COMPLETED")
                finally:
                    leading.cancel()
                if stopper.done():
                    return
                if election.done():
                    lost = not election.cancelled() and election.exception() is None
                    election.result()  # an elector failure propagates
                    return

            for controller in self._controllers:
                task = asyncio.create_task(controller.run(), name=f"controller {controller.name}")
                controller_tasks[task] = controller
            watched: set[asyncio.Future[Any]] = {stopper, *controller_tasks}
            if election is not None:
                watched.add(election)
            done, _ = await asyncio.wait(watched, return_when="FIRST_COMPLETED")
            if election is not None and election in done:
                lost = True
                log.error("leader election lost; stopping controllers now")
            for task, controller in controller_tasks.items():
                if task not in done:
                    continue
                if task.cancelled() or task.exception() is None:
                    failure = RuntimeError(f"controller {controller.name} stopped unexpectedly")
                else:
                    failure = task.exception()
                log.error("controller %s failed", controller.name, exc_info=failure)
                break
        finally:
            await self._teardown(controller_tasks, election, lost=lost, presync=presync)
            stopper.cancel()
        if lost:
            raise LeaderElectionLost(
                f"leader election lost for Lease {opts.leader_election_id}; exiting so a "
                "fresh process can rejoin as a candidate"
            )
        if failure is not None:
            raise failure

    async def _wait(
        self, work: Coroutine[Any, Any, None], stopper: asyncio.Task[Literal[True]]
    ) -> bool:
        """Await ``work`` unless stop is requested first; True when ``work`` finished."""
        task = asyncio.create_task(work)
        try:
            await asyncio.wait({task, stopper}, return_when="FIRST_COMPLETED")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            return False
        task.result()
        return True

    async def _start_presync(self, synced: asyncio.Event) -> list[asyncio.Task[None]]:
        """Open every pre-sync work (a failing one is skipped) and start its run task."""
        if self.options.leader_elect or not self._presync:
            return []
        # Opened side by side: the servers wait for the slowest one, not for their sum.
        opened = await asyncio.gather(
            *(asyncio.wait_for(work.open(), PRESYNC_OPEN_TIMEOUT) for work in self._presync),
            return_exceptions=True,
        )
        tasks: list[asyncio.Task[None]] = []
        for work, outcome in zip(self._presync, opened, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("pre-sync work %r skipped: open failed", work, exc_info=outcome)
                continue
            tasks.append(asyncio.create_task(self._run_presync(work, synced), name=f"{work!r}"))
        return tasks

    @staticmethod
    async def _run_presync(work: PreSyncWork, synced: asyncio.Event) -> None:
        try:
            await work.run(synced)
        except asyncio.CancelledError:
            raise
        except Exception:  # an optimisation failing must not stop the manager
            log.warning("pre-sync work %r failed", work, exc_info=True)

    async def _sync_caches(self) -> None:
        timeout = self.options.cache_sync_timeout
        if not await self.informers.wait_for_sync(timeout):
            unsynced = ", ".join(repr(i) for i in self.informers.unsynced())
            raise CacheSyncTimeoutError(
                f"informers not synced after {timeout} s: {unsynced} (check the API server, RBAC "
                "and ManagerOptions.cache_sync_timeout)"
            )

    def _make_elector(self) -> LeaderElector:
        opts = self.options
        identity = opts.leader_election_identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        config = LeaderElectionConfig(
            lease_name=opts.leader_election_id,
            lease_namespace=opts.leader_election_namespace or default_lease_namespace(),
            identity=identity,
            lease_duration=opts.lease_duration,
            renew_deadline=opts.renew_deadline,
            retry_period=opts.retry_period,
            release_on_cancel=opts.leader_election_release_on_cancel,
        )
        return LeaderElector(self.client, config, registry=opts.registry, clock=opts.clock)

    async def _teardown(
        self,
        controller_tasks: dict[asyncio.Task[None], Controller],
        election: asyncio.Task[None] | None,
        *,
        lost: bool,
        presync: list[asyncio.Task[None]],
    ) -> None:
        """Stop in reverse order; every step runs even if an earlier one failed."""
        grace = 0.0 if lost else self.options.graceful_shutdown_timeout
        for task in presync:
            task.cancel()
        await asyncio.gather(*presync, return_exceptions=True)
        if controller_tasks:
            results = await asyncio.gather(
                *(c.stop(timeout=grace) for c in controller_tasks.values()),
                return_exceptions=True,
            )
            for controller, result in zip(controller_tasks.values(), results, strict=True):
                if result is False:
                    log.warning("controller %s did not drain in time", controller.name)
                elif isinstance(result, BaseException):
                    log.error("stopping controller %s failed", controller.name, exc_info=result)
            for task in controller_tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*controller_tasks, return_exceptions=True)
        if election is not None and not election.done():
            election.cancel()  # releases the Lease when configured
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await election
        try:
            await self.informers.stop()
        except Exception:
            log.exception("stopping informers failed")
        self._caches_synced = False
        for runnable in reversed(self._started_runnables):
            try:
                await runnable.stop()
            except Exception:
                log.exception("stopping %r failed", runnable)
        self._started_runnables.clear()
        for server in reversed(self._servers):
            try:
                await server.stop()
            except Exception:
                log.exception("stopping the %s server failed", server.name)
        log.info("manager stopped")

    # -- HTTP ------------------------------------------------------------------------------------

    async def _start_servers(self) -> None:
        """Start the metrics and probe servers (one server when both use one fixed address)."""
        opts = self.options
        plans: list[tuple[str, tuple[str | None, int], list[Route]]] = []
        metrics = parse_bind_address(opts.metrics_bind_address)
        secure: HttpServer | None = None
        if metrics is not None:
            route = metrics_route(opts.registry)
            if opts.metrics_filter is not None:
                route = Route(route.path, opts.metrics_filter(route.handler))
            if opts.metrics_ssl_context is not None:  # HTTPS: a listener of its own
                secure = HttpServer(
                    name="metrics", address=metrics, routes=[route], ssl=opts.metrics_ssl_context
                )
            else:
                plans.append(("metrics", metrics, [route]))
        health = parse_bind_address(opts.health_probe_bind_address)
        if health is not None:
            plans.append(("health", health, [*self.healthz.routes(), *self.readyz.routes()]))
        if secure is not None:
            await secure.start()
            self._servers.append(secure)
        merged: list[tuple[str, tuple[str | None, int], list[Route]]] = []
        for name, address, routes in plans:
            for i, (other, other_address, other_routes) in enumerate(merged):
                if address == other_address and address[1] != 0:
                    merged[i] = (f"{other}+{name}", address, other_routes + routes)
                    break
            else:
                merged.append((name, address, routes))
        for name, address, routes in merged:
            server = HttpServer(name=name, address=address, routes=routes)
            await server.start()
            self._servers.append(server)

    def _port_of(self, path: str) -> int:
        for server in self._servers:
            if server.serves(path):
                return server.port
        raise RuntimeError(f"no running server serves {path} (disabled, or run() not started)")

    # -- checks ----------------------------------------------------------------------------------

    def _check_caches(self) -> None:
        if self._caches_synced:
            return
        if self._waiting_on is not None:
            raise RuntimeError(f"waiting for {self._waiting_on}")
        unsynced = self.informers.unsynced()
        if unsynced:
            raise RuntimeError("not synced: " + ", ".join(repr(i) for i in unsynced))
        raise RuntimeError("caches not started")

    def _check_leader_election(self) -> None:
        if self.elector is not None and not self.elector.healthy():
            raise RuntimeError("leader has not renewed its Lease in time")


async def run_manager(manager: Manager) -> int:
    """Run ``manager`` with SIGTERM/SIGINT handling; the process exit status.

    0 after a graceful stop, 1 after a lost leadership (the pod restarts as a candidate).
    Other failures propagate.
    """
    remove = install_signal_handlers(manager.request_stop)
    try:
        await manager.run()
    except LeaderElectionLost as e:
        log.error("%s", e)
        return 1
    finally:
        remove()
    return 0
