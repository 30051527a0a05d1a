"""``Controller``: a sharded, rate-limited work queue, its workers, and the reconcile contract.

A controller owns one queue (``ShardedQueue``: ``shards`` queues by a stable hash of the key, each
served by ``workers_per_shard`` workers), watches informers through handlers that turn events into
keys (``watch``), and runs ``reconciler(Request)`` for each key a worker takes, applying the
outcome table of ``reconcile.py``. The queue guarantees one key is never reconciled by two workers
at once, across all shards; N events before a reconcile collapse into one.

Lifecycle (one-shot, as controller-runtime's): ``watch`` wiring first; ``run()`` registers the
handlers (the informers replay their caches as low-priority adds), waits for the informers to
sync, starts the workers and returns when they end; ``stop(timeout=...)`` shuts the queue down,
lets the workers drain it (in-flight reconciles finish, ready keys are still processed) for at most
``timeout`` seconds, then cancels what is left. A stopped controller cannot run again. The manager
runs controllers only while it leads, so handlers are registered at ``run``, not at ``watch``: a
non-leader's queue stays empty.

Every reconcile runs inside ``engine.logging.reconcile_context`` (controller, key, reconcile_id on
every log line) and is measured with controller-runtime's ``controller_runtime_*`` metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.informers.event_handlers import ResourceEventHandler
from kubetrain.informers.informer import SharedInformer

from .enqueue import EnqueueForObject, QueueEventHandler, bind
from .logging import reconcile_context
from .metrics import ControllerMetrics, controller_metric_families, workqueue_provider
from .queue import NORMAL_PRIORITY, QueueOptions
from .ratelimiters import RateLimiter
from .reconcile import Reconciler, Request, Result, TerminalError, new_reconcile_id
from .sharding import ShardedQueue, ShardingOptions

__all__ = [
    "DEFAULT_PANIC_TYPES",
    "CacheSyncTimeoutError",
    "Controller",
    "ControllerOptions",
    "ReconcileTimeoutError",
]

log = logging.getLogger(__name__)

#: Exceptions that mean a bug in the reconciler rather than a failure of the world (the Go
#: "panic"): they are retried like any error but also counted in
#: ``controller_runtime_reconcile_panics_total`` so a dashboard can tell bugs from outages.
DEFAULT_PANIC_TYPES: tuple[type[BaseException], ...] = (
    AssertionError,
    AttributeError,
    LookupError,
    NameError,
    TypeError,
    ArithmeticError,
    RecursionError,
    NotImplementedError,
)


class ReconcileTimeoutError(TimeoutError):
    """A reconcile ran longer than ``ControllerOptions.reconcile_timeout`` and was cancelled."""


class CacheSyncTimeoutError(TimeoutError):
    """The informers a controller watches did not sync within ``cache_sync_timeout``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerOptions:
    """How a controller runs; every field has a usable default."""

    shards: int = 1
    """Queues the keys are split over (by crc32 of the key); a hot shard does not stall others."""
    workers_per_shard: int = 1
    """Concurrent reconciles per shard; ``shards * workers_per_shard`` is the controller's
    ``MaxConcurrentReconciles`` (controller-runtime default 1)."""
    rate_limiter: RateLimiter[str] | None = None
    """Retry delays of failed keys; None: per-key 5 ms .. 1000 s exponential under a global
    10 qps / burst 100 bucket (client-go's default controller limiter), shared by all shards."""
    reconcile_timeout: float | None = None
    """Seconds after which a reconcile is cancelled and counted as an error (and a timeout);
    None: no limit (controller-runtime's ``ReconciliationTimeout`` default)."""
    cache_sync_timeout: float = 120.0
    """Real seconds ``run`` waits for the watched informers to sync before failing (2 min)."""
    panic_types: tuple[type[BaseException], ...] = DEFAULT_PANIC_TYPES
    """Exception types also counted as panics (see ``DEFAULT_PANIC_TYPES``)."""
    clock: Clock = REAL_CLOCK
    """Time for delays, backoff, timeouts and durations; tests pass a ``FakeClock``."""
    registry: CollectorRegistry | None = None
    """Where the ``controller_runtime_*`` and ``workqueue_*`` metrics go; None: the global one."""

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"ControllerOptions.shards must be >= 1, got {self.shards}")
        if self.workers_per_shard < 1:
            raise ValueError(
                f"ControllerOptions.workers_per_shard must be >= 1, got {self.workers_per_shard}"
            )
        if self.reconcile_timeout is not None and self.reconcile_timeout <= 0:
            raise ValueError(
                "ControllerOptions.reconcile_timeout must be > 0 seconds or None, "
                f"got {self.reconcile_timeout}"
            )

    @property
    def max_concurrent_reconciles(self) -> int:
        return self.shards * self.workers_per_shard


class Controller:
    """Runs ``reconciler`` for the keys its watches produce (see the module docstring).

    ``name`` labels metrics, logs and the queue (``workqueue_*{name=..., controller=...}``); it
    must be unique among the controllers of one registry.
    """

    def __init__(
        self, name: str, reconciler: Reconciler, *, options: ControllerOptions | None = None
    ) -> None:
        if not name:
            raise ValueError("Controller name must not be empty (it labels metrics and logs)")
        self.name = name
        self.options = options if options is not None else ControllerOptions()
        opts = self.options
        self._reconciler = reconciler
        self._clock = opts.clock
        self.queue: ShardedQueue[str] = ShardedQueue(
            ShardingOptions(
                shards=opts.shards,
                workers_per_shard=opts.workers_per_shard,
                queue=QueueOptions(
                    name=name,
                    controller=name,
                    clock=opts.clock,
                    metrics_provider=workqueue_provider(opts.registry),
                ),
            ),
            rate_limiter=opts.rate_limiter,
        )
        self._metrics = ControllerMetrics(
            controller_metric_families(opts.registry), controller=name
        )
        self._metrics.max_concurrent.set(opts.max_concurrent_reconciles)
        self._metrics.active_workers.set(0)
        # (informer, handler) pairs from watch(); registered with the informers by run().
        self._watches: list[tuple[SharedInformer, QueueEventHandler]] = []
        self._registered: list[tuple[SharedInformer, ResourceEventHandler]] = []
        self._workers: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"<Controller {self.name}>"

    # -- wiring ----------------------------------------------------------------------------------

    def watch(
        self, informer: SharedInformer, handler: QueueEventHandler | None = None
    ) -> Controller:
        """Reconcile keys that ``handler`` (default ``EnqueueForObject()``) derives from
        ``informer``'s events. Call before ``run``; returns self for chaining."""
        if self._started:
            raise RuntimeError(f"{self!r}: watch() must be called before run()")
        self._watches.append((informer, handler if handler is not None else EnqueueForObject()))
        return self

    @property
    def informers(self) -> list[SharedInformer]:
        """The informers this controller watches (each once)."""
        seen: dict[int, SharedInformer] = {}
        for informer, _ in self._watches:
            seen.setdefault(id(informer), informer)
        return list(seen.values())

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._workers is not None and not self._workers.done()

    async def run(self) -> None:
        """Register handlers, wait for the informers to sync, then reconcile until ``stop``.

        Raises ``CacheSyncTimeoutError`` when the informers do not sync in time. Cancelling
        ``run`` cancels the workers (in-flight reconciles get ``CancelledError``).
        """
        if self._started:
            raise RuntimeError(f"{self!r} already ran; create a new controller")
        self._started = True
        try:
            for informer, handler in self._watches:
                bound = bind(handler, self.queue)
                informer.add_event_handler(bound)
                self._registered.append((informer, bound))
                informer.start()
            informers = self.informers
            try:
                async with asyncio.timeout(self.options.cache_sync_timeout):
                    for informer in informers:
                        await informer.wait_for_sync()
            except TimeoutError:
                unsynced = ", ".join(repr(i) for i in informers if not i.has_synced)
                raise CacheSyncTimeoutError(
                    f"{self!r}: informers not synced after {self.options.cache_sync_timeout} s: "
                    f"{unsynced} (raise ControllerOptions.cache_sync_timeout or check the API "
                    "server and RBAC)"
                ) from None
            if self._stopped:
                return
            log.info(
                "Starting workers",
                extra={
                    "controller": self.name,
                    "worker_count": self.options.max_concurrent_reconciles,
                },
            )
            self._workers = asyncio.create_task(
                self.queue.run_workers(self._process), name=f"controller {self.name} workers"
            )
            # wait() rather than await: stop() may cancel the workers, which ends run normally.
            await asyncio.wait({self._workers})
            if not self._workers.cancelled():
                self._workers.result()  # a bug in the worker loop propagates
        except asyncio.CancelledError:
            if self._workers is not None:
                self._workers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._workers
            raise
        finally:
            self._unregister()

    async def stop(self, *, timeout: float | None = None) -> bool:
        """Stop taking new work and drain: wait (at most ``timeout`` real seconds; None: no
        limit) until the queue is empty and no reconcile is in flight, then cancel what is left.

        Returns True when the drain completed, False when workers had to be cancelled. Safe to
        call before ``run``, while it runs, or twice.
        """
        self._stopped = True
        self._unregister()
        if self._workers is None:
            # No worker ever ran (not leading yet, or still syncing): nothing to drain.
            self.queue.shutdown()
            return True
        drained = True
        try:
            async with asyncio.timeout(timeout):
                await self.queue.shutdown_with_drain()
        except TimeoutError:
            drained = False
        workers = self._workers
        if workers is not None and not workers.done():
            if not drained:
                log.warning(
                    "Drain timed out after %s s; cancelling in-flight reconciles",
                    timeout,
                    extra={"controller": self.name},
                )
                workers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await workers
        return drained

    def _unregister(self) -> None:
        for informer, bound in self._registered:
            informer.remove_event_handler(bound)
        self._registered.clear()

    # -- one key ---------------------------------------------------------------------------------

    async def _process(self, key: str) -> None:
        """Reconcile ``key`` once and apply the outcome to the queue. Never raises (except
        ``CancelledError``); the worker loop calls ``done``."""
        request = Request.from_key(key, reconcile_id=new_reconcile_id())
        metrics = self._metrics
        queue = self.queue
        metrics.active_workers.inc()
        start = self._clock.monotonic()
        try:
            with reconcile_context(
                controller=self.name, key=key, reconcile_id=request.reconcile_id
            ):
                try:
                    result = await self._reconcile_with_timeout(request)
                    if not isinstance(result, Result):
                        raise TypeError(
                            f"reconciler of {self.name} returned {type(result).__name__}, "
                            "expected reconcile.Result (return Result() when done)"
                        )
                except asyncio.CancelledError:
                    raise
                except TerminalError as e:
                    metrics.terminal_errors.inc()
                    metrics.errors.inc()
                    metrics.result["error"].inc()
                    queue.forget(key)
                    log.error("Reconciler error (terminal, not retried): %s", e, exc_info=e)
                    return
                except Exception as e:
                    if isinstance(e, ReconcileTimeoutError):
                        metrics.timeouts.inc()
                    if isinstance(e, self.options.panic_types):
                        metrics.panics.inc()
                    metrics.errors.inc()
                    metrics.result["error"].inc()
                    queue.add_rate_limited(key)
                    log.error("Reconciler error: %s", e, exc_info=e)
                    return
                priority = result.priority if result.priority is not None else NORMAL_PRIORITY
                if result.requeue_after:
                    queue.forget(key)
                    queue.add_after(key, result.requeue_after, priority=priority)
                    metrics.result["requeue_after"].inc()
                elif result.requeue:
                    queue.add_rate_limited(key, priority=priority)
                    metrics.result["requeue"].inc()
                else:
                    queue.forget(key)
                    metrics.result["success"].inc()
        finally:
            metrics.reconcile_time.observe(max(0.0, self._clock.monotonic() - start))
            metrics.active_workers.dec()

    async def _reconcile_with_timeout(self, request: Request) -> Result:
        """Call the reconciler; past ``reconcile_timeout`` (on the controller's clock) cancel it
        and raise ``ReconcileTimeoutError``. A cancellation from outside passes through."""
        timeout = self.options.reconcile_timeout
        if timeout is None:
            return await self._reconciler(request)
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = self._clock.call_at(self._clock.monotonic() + timeout, expire)
        try:
            result = await self._reconciler(request)
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:
                raise ReconcileTimeoutError(
                    f"reconcile of {request.key} exceeded {timeout} s (ControllerOptions."
                    "reconcile_timeout); return requeue_after for long waits instead of awaiting"
                ) from None
            raise
        finally:
            timer.cancel()
        if expired:
            # The reconciler swallowed the cancellation and returned late: still a timeout.
            task.uncancel()
            raise ReconcileTimeoutError(
                f"reconcile of {request.key} exceeded {timeout} s and ignored its cancellation"
            )
        return result
