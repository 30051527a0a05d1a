"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Several operator replicas may run; only the holder of the Lease reconciles. This is client-go's
``tools/leaderelection`` in asyncio: the candidate polls every ``retry_period`` (jittered by 1.2)
until the Lease is free or expired, then renews it every ``retry_period``; if it cannot renew
within ``renew_deadline`` it stops leading. Writes are optimistic (the Lease's resourceVersion):
a 409 means another candidate won the race. Expiry is judged only by *local* observation time
(when this process last saw the Lease record change) plus the record's ``leaseDurationSeconds``,
so clock skew between replicas does not matter, but skew in clock *rate* does. There is no
fencing: a paused leader may act briefly after losing the Lease (as in client-go).

On cancellation with ``release_on_cancel`` the Lease is released (empty holder,
``leaseDurationSeconds: 1``) so another candidate takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.metrics_registry import once_per_registry
from kubetrain.informers.resource import LEASES
from kubetrain.informers.transport import ApiStatusError, Transport

__all__ = ["JITTER_FACTOR", "LeaderElectionConfig", "LeaderElector"]

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: the acquire loop sleeps retry_period * (1 + rand * 1.2)."""

Callback = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderElectionConfig:
    """What to elect on and how fast. Defaults are controller-runtime's (15 s / 10 s / 2 s).

    Invariant (checked): ``lease_duration > renew_deadline > JITTER_FACTOR * retry_period > 0``.
    """

    lease_name: str
    lease_namespace: str
    identity: str
    """This candidate's unique name (controller-runtime: hostname + "_" + uuid)."""
    lease_duration: float = 15.0
    """How long non-leaders wait after last seeing a renewal before taking over. Stored in the
    Lease as whole seconds (rounded up)."""
    renew_deadline: float = 10.0
    """How long the leader keeps retrying a renewal before it gives up leading."""
    retry_period: float = 2.0
    """Time between acquire attempts (jittered) and between renewals."""
    release_on_cancel: bool = True
    """Release the Lease when ``run`` is cancelled, so a successor need not wait for expiry."""
    name: str = ""
    """The ``name`` label of ``leader_election_master_status``; default: ``lease_name``."""

    def __post_init__(self) -> None:
        for field_name in ("lease_name", "lease_namespace", "identity"):
            if not getattr(self, field_name):
                raise ValueError(f"LeaderElectionConfig.{field_name} must not be empty")
        if self.retry_period <= 0:
            raise ValueError(f"retry_period must be > 0, got {self.retry_period}")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(
                f"lease_duration ({self.lease_duration}) must be greater than renew_deadline "
                f"({self.renew_deadline}): a leader must give up before others may take over"
            )
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(
                f"renew_deadline ({self.renew_deadline}) must be greater than "
                f"{JITTER_FACTOR} * retry_period ({JITTER_FACTOR * self.retry_period:g}); "
                "lower retry_period or raise renew_deadline"
            )


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.master_status = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
            "backup, 1 indicates master. 'name' is the string used to identify the lease.",
            ["name"],
            registry=registry,
        )
        self.slowpath = Counter(
            "leader_election_slowpath",
            "Total number of slow path exercised in renewing leader leases. 'name' is the "
            "string used to identify the lease.",
            ["name"],
            registry=registry,
        )


def _metrics_for(registry: CollectorRegistry | None) -> _Metrics:
    return once_per_registry(_Metrics, registry)


class LeaderElector:
    """Runs one candidate. ``await elector.run()`` returns when leadership is lost (or never
    gained before cancellation); cancel the task to stop (releasing per the config).

    Callbacks (each may be sync or return an awaitable):
    - ``on_started_leading()``: if it returns an awaitable, it runs as a task that is cancelled
      when leadership ends (client-go passes a context that is cancelled);
    - ``on_stopped_leading()``: after leading ends, however it ends; awaited;
    - ``on_new_leader(identity)``: sync, whenever the observed holder changes (self included).

    ``client`` is any ``Transport`` (the ``ApiClient``). ``clock``: the Lease's times, retries,
    the renew deadline and expiry judgement (a request in flight is bounded in real time, so a
    fake clock's jump does not cancel it); tests pass a ``FakeClock``.
    """

    def __init__(
        self,
        client: Transport,
        config: LeaderElectionConfig,
        *,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        clock: Clock = REAL_CLOCK,
        rand: Callable[[], float] = random.random,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._clock = clock
        self._rand = rand
        self._metrics = _metrics_for(registry)
        self._name = config.name or config.lease_name
        self._path = LEASES.item_path(config.lease_namespace, config.lease_name)
        self._lease: dict[str, Any] | None = None  # last Lease read or written (with its RV)
        self._observed_spec: dict[str, Any] = {}
        self._observed_at = -math.inf  # clock.monotonic() when _observed_spec last changed
        self._reported_leader: str | None = None
        self._leading = False
        self._last_renew = -math.inf
        self._leading_event = asyncio.Event()
        self._metrics.master_status.labels(self._name).set(0)

    # -- state for others -----------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True while this candidate holds the Lease (as of its last successful renewal)."""
        return self._leading

    @property
    def leader(self) -> str:
        """The holder identity last observed ("" when none)."""
        return str(self._observed_spec.get("holderIdentity") or "")

    async def wait_until_leading(self) -> None:
        """Return once this candidate has become leader."""
        await self._leading_event.wait()

    def healthy(self, *, tolerance: float = 20.0) -> bool:
        """client-go's ``HealthzAdaptor``: False if we lead but have not renewed for
        ``lease_duration + tolerance`` seconds (a stuck leader should be restarted)."""
        if not self._leading:
            return True
        return self._clock.monotonic() - self._last_renew <= self.config.lease_duration + tolerance

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Acquire, lead while renewals succeed, then return. Cancellation releases (if set)."""
        started: asyncio.Task[None] | None = None
        cancelled = False
        try:
            await self._acquire()
            self._set_leading(True)
            log.info("leader election %s: %s became leader", self._name, self.config.identity)
            if self._on_started is not None:
                result = self._on_started()
                if inspect.isawaitable(result):
                    started = asyncio.ensure_future(result)
            await self._renew_loop()
            log.warning("leader election %s: %s lost the lease", self._name, self.config.identity)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            was_leading = self._leading
            self._set_leading(False)
            if started is not None and not started.done():
                started.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await started
            if was_leading:
                if cancelled and self.config.release_on_cancel:
                    await self._release()
                if self._on_stopped is not None:
                    result = self._on_stopped()
                    if inspect.isawaitable(result):
                        await result

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                return
            period = self.config.retry_period
            await self._clock.sleep(period + self._rand() * JITTER_FACTOR * period)

    async def _renew_loop(self) -> None:
        """Renew every retry_period; return when no renewal succeeded within renew_deadline."""
        while True:
            deadline = self._clock.monotonic() + self.config.renew_deadline
            while True:
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                    # that races with the inner call finishing, and the leader would never stop.
                    # Real time bounds the request; the deadline itself is the clock's.
                    async with asyncio.timeout(remaining):
                        ok = await self._try_acquire_or_renew()
                except TimeoutError:
                    ok = False
                if ok:
                    break
                if deadline - self._clock.monotonic() <= 0:
                    return
                await self._clock.sleep(self.config.retry_period)
            await self._clock.sleep(self.config.retry_period)

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt (client-go ``tryAcquireOrRenew``). True when we hold the Lease now."""
        cfg = self.config
        now = _micro_time(self._clock.utcnow())
        spec: dict[str, Any] = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": max(1, math.ceil(cfg.lease_duration)),
            "acquireTime": now,
            "renewTime": now,
        }
        # Fast path: we lead and hold the Lease we last wrote; renew it directly.
        if self._leading and self._lease is not None:
            old = self._lease.get("spec") or {}
            spec["acquireTime"] = old.get("acquireTime", now)
            spec["leaseTransitions"] = old.get("leaseTransitions", 0)
            try:
                self._stored(await self._write_spec(spec))
                return True
            except (ApiStatusError, ConnectionError, TimeoutError) as e:
                log.info("leader election %s: fast-path renew failed: %s", self._name, e)
                self._metrics.slowpath.labels(self._name).inc()

        try:
            lease = await self.client.request_json("GET", self._path)
        except ApiStatusError as e:
            if not e.is_not_found:
                log.info("leader election %s: reading the lease failed: %s", self._name, e)
                return False
            spec["leaseTransitions"] = 0
            try:
                created = await self.client.request_json(
                    "POST",
                    LEASES.collection_path(cfg.lease_namespace),
                    body={
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": cfg.lease_name, "namespace": cfg.lease_namespace},
                        "spec": spec,
                    },
                )
            except (ApiStatusError, ConnectionError, TimeoutError) as e:
                log.info("leader election %s: creating the lease failed: %s", self._name, e)
                return False
            self._stored(created)
            return True
        except (ConnectionError, TimeoutError) as e:
            log.info("leader election %s: reading the lease failed: %s", self._name, e)
            return False

        self._observe(lease)
        old = lease.get("spec") or {}
        holder = str(old.get("holderIdentity") or "")
        if holder and holder != cfg.identity and self._lease_valid(old):
            return False  # someone else holds a live lease
        if holder == cfg.identity:  # client-go IsLeader(): the observed holder is us
            spec["acquireTime"] = old.get("acquireTime", now)
            spec["leaseTransitions"] = old.get("leaseTransitions", 0)
        else:
            spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + 1
        self._lease = lease
        try:
            self._stored(await self._write_spec(spec))
        except (ApiStatusError, ConnectionError, TimeoutError) as e:
            log.info("leader election %s: writing the lease failed: %s", self._name, e)
            return False
        return True

    async def _write_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """PUT the Lease with ``spec``, guarded by the resourceVersion we last saw."""
        assert self._lease is not None
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": self._lease.get("metadata") or {},
            "spec": spec,
        }
        return await self.client.request_json("PUT", self._path, body=body)

    def _stored(self, lease: dict[str, Any]) -> None:
        """Our write succeeded: remember the Lease (for the next RV) as observed now."""
        self._lease = lease
        self._observe(lease)
        self._last_renew = self._clock.monotonic()

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observed_spec = dict(spec)
            self._observed_at = self._clock.monotonic()
        holder = str(spec.get("holderIdentity") or "")
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            if self._on_new_leader is not None:
                try:
                    self._on_new_leader(holder)
                except Exception:
                    log.exception("leader election %s: on_new_leader failed", self._name)

    def _lease_valid(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or 0)
        return self._observed_at + duration > self._clock.monotonic()

    async def _release(self) -> None:
        """Hand the Lease back (empty holder, 1 s) if we still hold it; errors are logged.

        A renewal cancelled in flight may have landed without us seeing the new
        resourceVersion; on 409 we re-read and, if the Lease still names us, release that.
        """
        if self._lease is None:
            return
        try:
            async with asyncio.timeout(self.config.renew_deadline):
                for attempt in range(2):
                    if attempt:
                        self._lease = await self.client.request_json("GET", self._path)
                        holder = (self._lease.get("spec") or {}).get("holderIdentity")
                        if holder != self.config.identity:
                            return  # someone else holds it already: nothing to release
                    now = _micro_time(self._clock.utcnow())
                    spec = {
                        "holderIdentity": "",
                        "leaseDurationSeconds": 1,
                        "acquireTime": now,
                        "renewTime": now,
                        "leaseTransitions": (self._lease.get("spec") or {}).get(
                            "leaseTransitions", 0
                        ),
                    }
                    try:
                        released = await self._write_spec(spec)
                    except ApiStatusError as e:
                        if e.is_conflict and attempt == 0:
                            continue
                        raise
                    self._lease = released
                    self._observe(released)
                    log.info(
                        "leader election %s: %s released the lease",
                        self._name,
                        self.config.identity,
                    )
                    return
        except (ApiStatusError, ConnectionError, TimeoutError) as e:
            log.warning("leader election %s: release failed: %s", self._name, e)

    def _set_leading(self, leading: bool) -> None:
        self._leading = leading
        self._metrics.master_status.labels(self._name).set(1 if leading else 0)
        if leading:
            self._leading_event.set()
        else:
            self._leading_event.clear()


def _micro_time(at: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds, UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
